/**
 * The self-contained HTML report: the comparison table, inline SVG line charts (load, visible depth, instances,
 * age of the oldest message against the SLA) with every variant overlaid, and the sensitivity: each variant's
 * p95 wait, minutes over SLA, instance-hours and cost at every point of the grid. No scripts, no external assets:
 * it opens from disk and can be attached to a ticket.
 */
import type { HourlyPrice } from "./instance-pricing.ts";
import { costLabel, describeGrid, duration, renderSensitivityTable } from "./report-table.ts";
import type { SpreadFigure } from "./sensitivity.ts";
import { describePolicy, type VariantRun } from "./variant.ts";

export interface ReportContext {
  title: string;
  /** Lines describing the inputs (profile, throughput, boot time, price, assumptions...). */
  inputs: string[];
  slaSeconds: number;
  /** Shown in the cost rows' labels when every variant pays the same; undefined when they differ. */
  price: HourlyPrice | undefined;
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
      "Instances: taking jobs (solid); billed: + Pending, loading, leaving, draining (dashed)",
      runs.flatMap((r, i) => [
        { label: `${r.name} in service`, color: color(i), values: r.result.minutes.map((m) => m.inService) },
        { label: `${r.name} billed`, color: color(i), values: r.result.minutes.map((m) => m.billed), dashed: true },
      ]),
    ),
    chart(
      "Metric delay: minutes the alarms are behind (seeded draws; higher after a sleeping queue wakes)",
      runs.map((r, i) => ({ label: r.name, color: color(i), values: r.result.minutes.map((m) => m.metricLagMinutes) })),
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
svg{display:block;margin:8px 0 20px}code{background:#f4f4f4;padding:0 3px}.warn li{color:#a33}
</style></head><body>
<h1>${esc(context.title)}</h1>
<ul>${context.inputs.map((l) => `<li>${esc(l)}</li>`).join("")}</ul>
${warningList(runs)}
${summaryTable(runs, context)}
<div class="legend">${runs.map((r, i) => `<span><i class="swatch" style="background:${color(i)}"></i>${esc(r.name)}</span>`).join("")}</div>
${charts.join("\n")}
${sensitivitySection(runs, context)}
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
    [costLabel(context.price), (r) => `$${Math.round(r.summary.costUsd).toLocaleString("en-US")}`],
    ["scale-outs / scale-ins", (r) => `${r.summary.scaleOutActions} / ${r.summary.scaleInActions}`],
  ];
  const head = `<tr><th></th>${runs.map((r) => `<th>${esc(r.name)}</th>`).join("")}</tr>`;
  const body = rows.map(([label, cell]) => `<tr><td>${esc(label)}</td>${runs.map((r) => `<td>${esc(cell(r))}</td>`).join("")}</tr>`);
  return `<table>${head}${body.join("")}</table>`;
}

function warningList(runs: readonly VariantRun[]): string {
  const items = runs.flatMap((r) => r.warnings.map((w) => `<li><b>${esc(r.name)}</b>: ${esc(w)}</li>`));
  return items.length === 0 ? "" : `<h2>Warnings</h2><ul class="warn">${items.join("")}</ul>`;
}

const BOOT_COLORS = ["#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#17becf"];

function sensitivitySection(runs: readonly VariantRun[], context: ReportContext): string {
  const grid = runs[0]?.sensitivity.grid;
  if (!grid) return "";
  const legend = grid.bootMinutes
    .map((b, i) => `<span><i class="swatch" style="background:${BOOT_COLORS[i % BOOT_COLORS.length]}"></i>boot ${b} min</span>`)
    .join("");
  // [figure, title, to the plotted unit, label of a plotted value]
  const figures: Array<[SpreadFigure, string, (v: number) => number, (v: number) => string]> = [
    ["p95WaitSeconds", "p95 wait (min)", (v) => v / 60, (v) => String(+v.toFixed(1))],
    ["minutesOverSla", `minutes over SLA (${duration(context.slaSeconds)})`, (v) => v, String],
    ["instanceHours", "instance-hours", (v) => v, (v) => String(+v.toFixed(1))],
    ["costUsd", costLabel(context.price), (v) => v, (v) => `$${Math.round(v).toLocaleString("en-US")}`],
  ];
  return `<h2>Sensitivity</h2>
<p>Every variant replayed over ${esc(describeGrid(grid))}. Dots: one run each, coloured by boot time; grey bar: min – max;
black tick: the run above. A choice whose bar is short is robust to what we do not know.</p>
<pre>${esc(renderSensitivityTable(runs, { slaSeconds: context.slaSeconds, price: context.price }))}</pre>
<div class="legend">${legend}</div>
${figures.map(([figure, title, unit, format]) => spreadChart(runs, figure, title, unit, format, grid.bootMinutes)).join("\n")}`;
}

/** One row per variant: the grid's values of `figure` as dots on a shared axis. */
function spreadChart(
  runs: readonly VariantRun[],
  figure: SpreadFigure,
  title: string,
  unit: (v: number) => number,
  format: (v: number) => string,
  boots: readonly number[],
): string {
  const rowH = 28;
  const labelW = 300;
  const height = MARGIN.top + runs.length * rowH + 24;
  const max = niceCeiling(Math.max(0, ...runs.map((r) => unit(Math.max(r.sensitivity.spread[figure].max, r.summary[figure])))));
  const plotW = WIDTH - labelW - MARGIN.right;
  const x = (v: number) => labelW + (max === 0 ? 0 : (unit(v) / max) * plotW);
  const rows = runs.map((r, i) => {
    const y = MARGIN.top + i * rowH + rowH / 2;
    const { min, max: hi } = r.sensitivity.spread[figure];
    const dots = r.sensitivity.points.map((p) => {
      const fill = BOOT_COLORS[boots.indexOf(p.bootMinutes) % BOOT_COLORS.length] ?? "#555";
      const delay = p.metricDelay === "typical" ? "typical delay" : `delay ${p.metricDelay} min`;
      return `<circle cx="${x(p.summary[figure]).toFixed(1)}" cy="${y}" r="4" fill="${fill}" fill-opacity="0.7"><title>${esc(`boot ${p.bootMinutes} min, ${delay}: ${format(unit(p.summary[figure]))}`)}</title></circle>`;
    });
    return (
      `<text x="${labelW - 8}" y="${y + 4}" text-anchor="end" font-size="11">${esc(r.name.length > 44 ? `${r.name.slice(0, 43)}…` : r.name)}</text>` +
      `<line x1="${x(min).toFixed(1)}" x2="${x(hi).toFixed(1)}" y1="${y}" y2="${y}" stroke="#bbb" stroke-width="8" stroke-linecap="round"/>` +
      dots.join("") +
      `<line x1="${x(r.summary[figure]).toFixed(1)}" x2="${x(r.summary[figure]).toFixed(1)}" y1="${y - 9}" y2="${y + 9}" stroke="#000" stroke-width="2"/>`
    );
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const px = (labelW + f * plotW).toFixed(1);
    return `<line x1="${px}" x2="${px}" y1="${MARGIN.top}" y2="${height - 24}" stroke="#eee"/><text x="${px}" y="${height - 8}" text-anchor="middle" font-size="11">${esc(format(f * max))}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" role="img" aria-label="${esc(title)}">
<text x="${MARGIN.left}" y="16" font-size="13" font-weight="600">${esc(title)}</text>
${ticks.join("\n")}
${rows.join("\n")}
</svg>`;
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
