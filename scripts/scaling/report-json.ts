/**
 * The machine-readable outputs: out/scaling/<name>.json (inputs, summary, sensitivity, actions and per-minute
 * series of every variant) and the one JSON line the CLI ends with (summaries, price and its date, and per
 * variant the spread over the sensitivity grid as {min, max}).
 */
import type { HourlyPrice } from "./instance-pricing.ts";
import type { LoadProfileSpec } from "./load-profile.ts";
import type { ModelOptions } from "./simulation.ts";
import type { Range } from "./sensitivity.ts";
import type { VariantRun } from "./variant.ts";

export interface ReportInputs {
  name: string;
  inputs: string[];
  profile: LoadProfileSpec;
  model: ModelOptions;
  slaSeconds: number;
  assumptions: string[];
}

export function reportJson(report: ReportInputs, runs: readonly VariantRun[]) {
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    name: report.name,
    inputs: report.inputs,
    assumptions: report.assumptions,
    profile: report.profile.kind === "csv" ? { kind: "csv", minutes: report.profile.arrivals.length } : report.profile,
    model: report.model,
    slaSeconds: report.slaSeconds,
    variants: runs.map((run) => {
      const m = run.result.minutes;
      const alarmNames = [...new Set(m.flatMap((x) => Object.keys(x.alarms)))];
      return {
        name: run.name,
        variables: run.variables,
        price: run.price,
        summary: run.summary,
        warnings: run.warnings,
        sensitivity: run.sensitivity,
        wakeUps: run.result.wakeUps,
        actions: run.result.actions,
        // Columns, one value per minute: compact, and easy to plot elsewhere.
        series: {
          arrivals: m.map((x) => r2(x.arrivals)),
          started: m.map((x) => r2(x.started)),
          depth: m.map((x) => r2(x.depth)),
          inFlight: m.map((x) => r2(x.inFlight)),
          oldestAgeSeconds: m.map((x) => r2(x.oldestAgeSeconds)),
          meanWaitSeconds: m.map((x) => r2(x.meanWaitSeconds)),
          inService: m.map((x) => x.inService),
          pending: m.map((x) => x.pending),
          loading: m.map((x) => x.loading),
          leaving: m.map((x) => x.leaving),
          draining: m.map((x) => x.draining),
          desired: m.map((x) => x.desired),
          billed: m.map((x) => x.billed),
          metricLagMinutes: m.map((x) => x.metricLagMinutes),
          sqsPublished: m.map((x) => x.sqsPublished),
          alarms: Object.fromEntries(alarmNames.map((a) => [a, m.map((x) => x.alarms[a] ?? null)])),
        },
      };
    }),
  };
}

/**
 * The last line of stdout. `price_per_hour` / `price_date` are the common price when every variant pays the same
 * (null otherwise; each variant carries its own); spreads are over the sensitivity grid.
 */
export function summaryLine(name: string, files: { json: string; html: string }, runs: readonly VariantRun[], common: HourlyPrice | undefined) {
  const range = (r: Range) => ({ min: r.min, max: r.max });
  return {
    name,
    json: files.json,
    html: files.html,
    price_per_hour: common?.usdPerHour ?? null,
    price_date: common?.date ?? null,
    variants: runs.map((r) => ({
      name: r.name,
      ...r.summary,
      price_per_hour: r.price.usdPerHour,
      price_date: r.price.date,
      p95_wait_s: range(r.sensitivity.spread.p95WaitSeconds),
      minutes_over_sla: range(r.sensitivity.spread.minutesOverSla),
      instance_hours: range(r.sensitivity.spread.instanceHours),
      cost_usd: range(r.sensitivity.spread.costUsd),
      warnings: r.warnings,
    })),
  };
}
