/**
 * Sensitivity: one variable set replayed over a grid of the two inputs nobody knows well — how late the metrics
 * arrive (1, 2, 3, 4 minutes fixed, and the assumed distribution) and how long a worker takes from launch to
 * serving (8, 15, 20 minutes) — keeping only each run's summary. The spread (min, max) of each figure across the
 * grid says whether a choice is robust or merely lucky at the default inputs.
 */
import type { MetricDelaySpec } from "./metric-delay.ts";
import { simulate, type ModelOptions } from "./simulation.ts";
import type { ScalingVariables } from "./scaling-variables.ts";
import { summarize, type Summary, type SummaryOptions } from "./summary.ts";

export interface SweepGrid {
  metricDelays: readonly MetricDelaySpec[];
  bootMinutes: readonly number[];
}

export const DEFAULT_SWEEP: SweepGrid = { metricDelays: [1, 2, 3, 4, "typical"], bootMinutes: [8, 15, 20] };

export interface SweepPoint {
  metricDelay: MetricDelaySpec;
  bootMinutes: number;
  summary: Summary;
}

export interface Range {
  min: number;
  max: number;
}

/** The figures whose spread every report shows. */
export const SPREAD_FIGURES = ["p95WaitSeconds", "minutesOverSla", "instanceHours", "costUsd"] as const;
export type SpreadFigure = (typeof SPREAD_FIGURES)[number];

export interface Sensitivity {
  grid: SweepGrid;
  points: SweepPoint[];
  spread: Record<SpreadFigure, Range>;
}

export function sweep(
  vars: ScalingVariables,
  arrivals: readonly number[],
  model: ModelOptions,
  summaryOptions: SummaryOptions,
  grid: SweepGrid = DEFAULT_SWEEP,
): Sensitivity {
  const points: SweepPoint[] = [];
  for (const bootMinutes of grid.bootMinutes) {
    for (const metricDelay of grid.metricDelays) {
      const result = simulate(vars, arrivals, { ...model, bootSeconds: bootMinutes * 60, metricDelay });
      points.push({ metricDelay, bootMinutes, summary: summarize(result, summaryOptions) });
    }
  }
  return { grid, points, spread: spreadOf(points.map((p) => p.summary)) };
}

export function spreadOf(summaries: readonly Summary[]): Record<SpreadFigure, Range> {
  const range = (figure: SpreadFigure): Range => {
    const values = summaries.map((s) => s[figure]);
    return { min: Math.min(...values), max: Math.max(...values) };
  };
  return Object.fromEntries(SPREAD_FIGURES.map((f) => [f, range(f)])) as Record<SpreadFigure, Range>;
}
