/**
 * The figures an SRE compares variants on, from one simulation: wait percentiles over every job (exact for the
 * fluid: each wait segment is a uniform stretch, so a percentile is found by bisection on the mixture's CDF),
 * depth, instance-hours, cost, and minutes over the SLA (minutes whose end-of-minute age of the oldest visible
 * message — CloudWatch's ApproximateAgeOfOldestMessage — exceeds it).
 */
import type { WaitSegment } from "./queue-model.ts";
import type { SimulationResult } from "./simulation.ts";

export interface Summary {
  p50WaitSeconds: number;
  p95WaitSeconds: number;
  maxWaitSeconds: number;
  meanWaitSeconds: number;
  maxDepth: number;
  instanceHours: number;
  costUsd: number;
  minutesOverSla: number;
  peakInstances: number;
  scaleOutActions: number;
  scaleInActions: number;
  jobsArrived: number;
  jobsQueuedAtEnd: number;
}

export interface SummaryOptions {
  slaSeconds: number;
  pricePerHour: number;
}

export function summarize(result: SimulationResult, options: SummaryOptions): Summary {
  const instanceMinutes = result.minutes.reduce((sum, m) => sum + m.billed, 0);
  const instanceHours = instanceMinutes / 60;
  return {
    p50WaitSeconds: round(waitQuantile(result.waits, 0.5) * 60),
    p95WaitSeconds: round(waitQuantile(result.waits, 0.95) * 60),
    maxWaitSeconds: round(maxOf(result.waits, (s) => Math.max(s.fromWait, s.toWait)) * 60),
    meanWaitSeconds: round(meanWait(result.waits) * 60),
    maxDepth: round(maxOf(result.minutes, (m) => m.depth)),
    instanceHours: round(instanceHours),
    costUsd: round(instanceHours * options.pricePerHour),
    minutesOverSla: result.minutes.filter((m) => m.oldestAgeSeconds > options.slaSeconds).length,
    peakInstances: maxOf(result.minutes, (m) => m.billed),
    scaleOutActions: result.actions.filter((a) => a.direction === "out").length,
    scaleInActions: result.actions.filter((a) => a.direction === "in").length,
    jobsArrived: round(result.minutes.reduce((sum, m) => sum + m.arrivals, 0)),
    jobsQueuedAtEnd: round(result.jobsQueuedAtEnd),
  };
}

/** The q-quantile (0–1) of wait over jobs, in the segments' unit. 0 when there are no jobs. */
export function waitQuantile(segments: readonly WaitSegment[], q: number): number {
  const total = segments.reduce((sum, s) => sum + s.jobs, 0);
  if (total <= 0) return 0;
  const wanted = q * total;
  let lo = 0;
  let hi = maxOf(segments, (s) => Math.max(s.fromWait, s.toWait));
  // Jobs with wait ≤ w; bisection to well under a second on any horizon.
  const below = (w: number) => segments.reduce((sum, s) => sum + s.jobs * fractionAtMost(s, w), 0);
  if (below(0) >= wanted) return 0;
  for (let i = 0; i < 60 && hi - lo > 1e-9; i++) {
    const mid = (lo + hi) / 2;
    if (below(mid) >= wanted) hi = mid;
    else lo = mid;
  }
  return hi;
}

function fractionAtMost(s: WaitSegment, w: number): number {
  const lo = Math.min(s.fromWait, s.toWait);
  const hi = Math.max(s.fromWait, s.toWait);
  if (w >= hi) return 1;
  if (w < lo) return 0;
  return hi === lo ? 1 : (w - lo) / (hi - lo);
}

function meanWait(segments: readonly WaitSegment[]): number {
  const total = segments.reduce((sum, s) => sum + s.jobs, 0);
  if (total <= 0) return 0;
  return segments.reduce((sum, s) => sum + (s.jobs * (s.fromWait + s.toWait)) / 2, 0) / total;
}

/** Largest value of `pick` over `items` (0 when empty); a loop, since spreading a long run overflows the stack. */
function maxOf<T>(items: readonly T[], pick: (item: T) => number): number {
  let max = 0;
  for (const item of items) max = Math.max(max, pick(item));
  return max;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
