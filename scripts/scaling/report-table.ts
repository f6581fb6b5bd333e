/** The human-readable comparison printed to stdout: one column per variant, one row per figure. */
import { describePolicy, type VariantRun } from "./variant.ts";

export interface TableContext {
  slaSeconds: number;
  /** Shown in the cost row's label when every variant pays the same; undefined when they differ. */
  pricePerHour: number | undefined;
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
    [context.pricePerHour === undefined ? "cost" : `cost (at $${context.pricePerHour}/h)`, (r) => `$${count(r.summary.costUsd)}`],
    ["scale-outs / scale-ins", (r) => `${r.summary.scaleOutActions} / ${r.summary.scaleInActions}`],
    ["jobs arrived / queued at end", (r) => `${count(r.summary.jobsArrived)} / ${count(r.summary.jobsQueuedAtEnd)}`],
  ];
  const header = ["", ...runs.map((r) => r.name)];
  const body = rows.map(([label, cell]) => [label, ...runs.map(cell)]);
  const widths = header.map((_, c) => Math.max(...[header, ...body].map((row) => (row[c] ?? "").length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
  const policies = runs.map((r) => `  ${r.name}: ${describePolicy(r.variables)}`);
  return [line(header), ...body.map(line), "", ...policies].join("\n");
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
