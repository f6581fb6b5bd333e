/**
 * The self-contained HTML report: the comparison table and inline SVG line charts (load, visible depth,
 * instances, age of the oldest message against the SLA) with every variant overlaid. No scripts, no external
 * assets: it opens from disk and can be attached to a ticket.
 */
import { duration } from "./report-table.ts";
import { describePolicy, type VariantRun } from "./variant.ts";

export interface ReportContext {
  title: string;
  /** Lines describing the inputs (profile, throughput, boot time, price...). */
  inputs: string[];
  slaSeconds: number;
  /** Shown in the cost row's label when every variant pays the same; undefined when they differ. */
  pricePerHour: number | undefined;
}

interface Series {
  label: string;
  color: string;
  values: number[];
  dashed?: boolean;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const WIDTH = 960;
const HEIGHT = 240;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 36 };
/** Longer runs are reduced to this many points per line, keeping each bucket's maximum (peaks stay visible). */
const MAX_POINTS = 1500;

export function renderHtmlReport(runs: readonly VariantRun[], context: ReportContext): string {
  const color = (i: number) => COLORS[i % COLORS.length]!;
  const arrivals = runs[0]?.result.minutes.map((m) => m.arrivals) ?? [];
  const charts = [
    chart("Arrivals (jobs / min)", [{ label: "load", color: "#555", values: arrivals }]),
    chart(
      "Visible depth (ApproximateNumberOfMessagesVisible)",
      runs.map((r, i) => ({ label: r.name, color: color(i), values: r.result.minutes.map((m) => m.depth) })),
    ),
    chart(
      "Instances: InService taking jobs (solid), billed: + Pending, leaving, draining (dashed)",
      runs.flatMap((r, i) => [
        { label: `${r.name} in service`, color: color(i), values: r.result.minutes.map((m) => m.inService) },
        { label: `${r.name} billed`, color: color(i), values: r.result.minutes.map((m) => m.billed), dashed: true },
      ]),
    ),
    chart(
      "Age of oldest visible message (min); dashed grey: SLA",
      [
        ...runs.map((r, i) => ({ label: r.name, color: color(i), values: r.result.minutes.map((m) => m.oldestAgeSeconds / 60) })),
        { label: "SLA", color: "#999", values: arrivals.map(() => context.slaSeconds / 60), dashed: true },
      ],
    ),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(context.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:${WIDTH + 40}px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}.legend span{display:inline-block;margin-right:16px}
.swatch{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:4px}
svg{display:block;margin:8px 0 20px}code{background:#f4f4f4;padding:0 3px}
</style></head><body>
<h1>${esc(context.title)}</h1>
<ul>${context.inputs.map((l) => `<li>${esc(l)}</li>`).join("")}</ul>
${summaryTable(runs, context)}
<div class="legend">${runs.map((r, i) => `<span><i class="swatch" style="background:${color(i)}"></i>${esc(r.name)}</span>`).join("")}</div>
${charts.join("\n")}
<h2>Policies</h2><ul>${runs.map((r) => `<li><b>${esc(r.name)}</b>: ${esc(describePolicy(r.variables))}</li>`).join("")}</ul>
</body></html>
`;
}

function summaryTable(runs: readonly VariantRun[], context: ReportContext): string {
  const rows: Array<[string, (r: VariantRun) => string]> = [
    ["p50 wait", (r) => duration(r.summary.p50WaitSeconds)],
    ["p95 wait", (r) => duration(r.summary.p95WaitSeconds)],
    ["max wait", (r) => duration(r.summary.maxWaitSeconds)],
    [`minutes over SLA (${duration(context.slaSeconds)})`, (r) => String(r.summary.minutesOverSla)],
    ["max depth", (r) => Math.round(r.summary.maxDepth).toLocaleString("en-US")],
    ["peak instances", (r) => String(r.summary.peakInstances)],
    ["instance-hours", (r) => r.summary.instanceHours.toFixed(1)],
    [context.pricePerHour === undefined ? "cost" : `cost (at $${context.pricePerHour}/h)`, (r) => `$${Math.round(r.summary.costUsd).toLocaleString("en-US")}`],
    ["scale-outs / scale-ins", (r) => `${r.summary.scaleOutActions} / ${r.summary.scaleInActions}`],
  ];
  const head = `<tr><th></th>${runs.map((r) => `<th>${esc(r.name)}</th>`).join("")}</tr>`;
  const body = rows.map(([label, cell]) => `<tr><td>${esc(label)}</td>${runs.map((r) => `<td>${esc(cell(r))}</td>`).join("")}</tr>`);
  return `<table>${head}${body.join("")}</table>`;
}

function chart(title: string, series: Series[]): string {
  const length = Math.max(1, ...series.map((s) => s.values.length));
  const reduced = series.map((s) => ({ ...s, values: downsample(s.values, MAX_POINTS) }));
  const points = Math.max(1, ...reduced.map((s) => s.values.length));
  const yMax = niceCeiling(Math.max(0, ...reduced.flatMap((s) => s.values)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (i: number) => MARGIN.left + (points <= 1 ? 0 : (i / (points - 1)) * plotW);
  const y = (v: number) => MARGIN.top + plotH - (yMax === 0 ? 0 : (v / yMax) * plotH);
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);
  const xTicks = timeTicks(length);
  const grid = [
    ...yTicks.map(
      (v) =>
        `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>` +
        `<text x="${MARGIN.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${esc(shortNumber(v))}</text>`,
    ),
    ...xTicks.map((m) => {
      const px = MARGIN.left + (length <= 1 ? 0 : (m / (length - 1)) * plotW);
      return `<text x="${px.toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle" font-size="11">${esc(clock(m))}</text>`;
    }),
  ];
  const lines = reduced.map((s) => {
    const d = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : "";
    return `<polyline fill="none" stroke="${s.color}" stroke-width="1.6"${dash} points="${d}"><title>${esc(s.label)}</title></polyline>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${esc(title)}">
<text x="${MARGIN.left}" y="16" font-size="13" font-weight="600">${esc(title)}</text>
<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#ccc"/>
${grid.join("\n")}
${lines.join("\n")}
<text x="${WIDTH - MARGIN.right}" y="${HEIGHT - 4}" text-anchor="end" font-size="11">time since start (h:mm)</text>
</svg>`;
}

/** At most `max` points: the maximum of each bucket. */
function downsample(values: number[], max: number): number[] {
  if (values.length <= max) return values;
  const bucket = Math.ceil(values.length / max);
  const out: number[] = [];
  for (let i = 0; i < values.length; i += bucket) {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = i; j < Math.min(values.length, i + bucket); j++) m = Math.max(m, values[j]!);
    out.push(m);
  }
  return out;
}

function timeTicks(minutes: number): number[] {
  const steps = [10, 15, 30, 60, 120, 180, 240, 360, 720, 1440, 2880, 10080];
  const step = steps.find((s) => minutes / s <= 12) ?? Math.ceil(minutes / 12);
  const ticks: number[] = [];
  for (let m = 0; m < minutes; m += step) ticks.push(m);
  return ticks;
}

function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const n = [1, 2, 2.5, 5, 10].find((f) => f * magnitude >= value) ?? 10;
  return n * magnitude;
}

function shortNumber(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

function clock(minute: number): string {
  return `${Math.floor(minute / 60)}:${String(minute % 60).padStart(2, "0")}`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
