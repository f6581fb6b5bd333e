/**
 * The human-readable comparison printed to stdout: one column per variant, one row per figure; then the spread of
 * the key figures over the sensitivity grid, and any warm-up warnings.
 */
import type { HourlyPrice } from "./instance-pricing.ts";
import type { Range, SweepGrid } from "./sensitivity.ts";
import { describePolicy, type VariantRun } from "./variant.ts";

export interface TableContext {
  slaSeconds: number;
  /** Shown in the cost rows' labels when every variant pays the same; undefined when they differ. */
  price: HourlyPrice | undefined;
}

export function renderTable(runs: readonly VariantRun[], context: TableContext): string {
  const rows: Array<[string, (r: VariantRun) => string]> = [
    ["p50 / p95 wait", (r) => `${duration(r.summary.p50WaitSeconds)} / ${duration(r.summary.p95WaitSeconds)}`],
    ["max wait", (r) => duration(r.summary.maxWaitSeconds)],
    ["mean wait", (r) => duration(r.summary.meanWaitSeconds)],
    [`minutes over SLA (${duration(context.slaSeconds)})`, (r) => String(r.summary.minutesOverSla)],
    ["max depth (visible)", (r) => count(r.summary.maxDepth)],
    ["peak instances", (r) => String(r.summary.peakInstances)],
    ["instance-hours", (r) => r.summary.instanceHours.toFixed(1)],
    [costLabel(context.price), (r) => `$${count(r.summary.costUsd)}`],
    ["scale-outs / scale-ins", (r) => `${r.summary.scaleOutActions} / ${r.summary.scaleInActions}`],
    ["jobs arrived / queued at end", (r) => `${count(r.summary.jobsArrived)} / ${count(r.summary.jobsQueuedAtEnd)}`],
  ];
  const policies = runs.map((r) => `  ${r.name}: ${describePolicy(r.variables)}`);
  return [columns(runs, rows), "", ...policies].join("\n");
}

/** Min – max of p95 wait, minutes over SLA, instance-hours and cost over the grid, and where p95 wait is worst. */
export function renderSensitivityTable(runs: readonly VariantRun[], context: TableContext): string {
  const range = (r: Range, format: (v: number) => string) => (r.min === r.max ? format(r.min) : `${format(r.min)} – ${format(r.max)}`);
  const rows: Array<[string, (r: VariantRun) => string]> = [
    ["p95 wait", (r) => range(r.sensitivity.spread.p95WaitSeconds, duration)],
    [`minutes over SLA (${duration(context.slaSeconds)})`, (r) => range(r.sensitivity.spread.minutesOverSla, String)],
    ["instance-hours", (r) => range(r.sensitivity.spread.instanceHours, (v) => v.toFixed(1))],
    [costLabel(context.price), (r) => range(r.sensitivity.spread.costUsd, (v) => `$${count(v)}`)],
    ["worst p95 wait at", (r) => worstAt(r)],
  ];
  const grid = runs[0]?.sensitivity.grid;
  return [`sensitivity, min – max over ${grid ? describeGrid(grid) : "the grid"}:`, columns(runs, rows)].join("\n");
}

export function describeGrid(grid: SweepGrid): string {
  const fixed = grid.metricDelays.filter((d) => d !== "typical").join(", ");
  const typical = grid.metricDelays.includes("typical") ? `${fixed === "" ? "" : " and "}typical` : "";
  return `metric delay ${fixed === "" ? "" : `${fixed} min`}${typical} × boot ${grid.bootMinutes.join(", ")} min (${grid.metricDelays.length * grid.bootMinutes.length} runs a variant)`;
}

export function costLabel(price: HourlyPrice | undefined): string {
  return price === undefined ? "cost" : `cost (at $${price.usdPerHour}/h, price of ${price.date})`;
}

function worstAt(run: VariantRun): string {
  const { min, max } = run.sensitivity.spread.p95WaitSeconds;
  if (min === max) return "(same everywhere)";
  let worst = run.sensitivity.points[0];
  for (const p of run.sensitivity.points) if (worst === undefined || p.summary.p95WaitSeconds > worst.summary.p95WaitSeconds) worst = p;
  if (worst === undefined) return "";
  return `boot ${worst.bootMinutes} min, delay ${worst.metricDelay === "typical" ? "typical" : `${worst.metricDelay} min`}`;
}

function columns(runs: readonly VariantRun[], rows: Array<[string, (r: VariantRun) => string]>): string {
  const header = ["", ...runs.map((r) => r.name)];
  const body = rows.map(([label, cell]) => [label, ...runs.map(cell)]);
  const widths = header.map((_, c) => Math.max(...[header, ...body].map((row) => (row[c] ?? "").length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
  return [line(header), ...body.map(line)].join("\n");
}

/** Seconds as "42 s", "3.5 min" or "2.1 h". */
export function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}
