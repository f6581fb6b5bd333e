/**
 * When the alarms see a minute's SQS datapoint: a seeded, bounded delay, and the idle-queue sleep.
 *
 * - Delay. SQS publishes one datapoint a minute, but late and irregularly; alarms changing state minutes after the
 *   fact are commonly reported. AWS documents no distribution, so TYPICAL_DELAY is an assumption: 1–4 minutes most
 *   of the time (median 2), a long tail to 10. Each minute k draws a delay d_k; the alarms then see datapoints up
 *   to minute k − d_k, never fewer than they saw before (a datapoint that has arrived stays).
 * - Sleep. "CloudWatch considers a queue to be active for up to six hours if it contains any messages or if any
 *   action accesses it" (SQS developer guide, CloudWatch metrics): a queue nobody sends to, receives from or holds
 *   messages in for 6 h stops publishing. When it wakes, its first datapoints are late by up to 15 minutes (drawn
 *   uniformly from 1–15: an assumption). With workers polling (min_size ≥ 1) the queue never sleeps; with
 *   min_size 0 the first job after a quiet night waits for this on top of the boot.
 * One generator per stream (delays, wake-ups), so variants run with the same seed see the same delays.
 */

/** A fixed delay in whole minutes, or "typical": the assumed distribution above. */
export type MetricDelaySpec = number | "typical";

/** P(delay = i + 1 minutes): 92 % within 1–4 minutes, 8 % from 5 to 10. Assumed, not documented by AWS. */
export const TYPICAL_DELAY_WEIGHTS: readonly number[] = [0.3, 0.3, 0.2, 0.12, 0.03, 0.02, 0.01, 0.01, 0.005, 0.005];
export const MAX_TYPICAL_DELAY_MINUTES = TYPICAL_DELAY_WEIGHTS.length;
/** SQS stops publishing for a queue idle this long. */
export const QUEUE_SLEEP_MINUTES = 360;
/** After a sleep, the first datapoints are late by 1 to this many minutes. */
export const WAKE_UP_MAX_DELAY_MINUTES = 15;

export function describeDelay(spec: MetricDelaySpec): string {
  return spec === "typical" ? "1–4 min + tail to 10 (assumed distribution)" : `${spec} min`;
}

/** mulberry32: small, fast and good enough to draw delays; the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Delay (whole minutes) of the next datapoint. */
export function delaySampler(spec: MetricDelaySpec, seed: number): () => number {
  if (spec !== "typical") return () => spec;
  const random = seededRandom(seed);
  return () => {
    let u = random();
    for (let i = 0; i < TYPICAL_DELAY_WEIGHTS.length; i++) {
      u -= TYPICAL_DELAY_WEIGHTS[i]!;
      if (u < 0) return i + 1;
    }
    return MAX_TYPICAL_DELAY_MINUTES;
  };
}

export interface MetricFeedOptions {
  delay: MetricDelaySpec;
  seed: number;
  /** Minutes the queue had been idle before minute 0 (0: active). */
  idleBeforeMinutes?: number;
}

/** Minute by minute: does SQS publish, and how far back do the alarms see. */
export class MetricFeed {
  private readonly nextDelay: () => number;
  private readonly wakeRandom: () => number;
  private lastActive: number;
  private asleep = false;
  /** Newest minute the alarms can see. */
  private horizon = Number.NEGATIVE_INFINITY;
  /** While a wake-up is late: the alarms see nothing from `wokeAt` on before `visibleFrom`. */
  private wokeAt = Number.POSITIVE_INFINITY;
  private visibleFrom = Number.NEGATIVE_INFINITY;
  readonly wakeUps: Array<{ minute: number; delayMinutes: number }> = [];

  constructor(options: MetricFeedOptions) {
    this.nextDelay = delaySampler(options.delay, options.seed);
    this.wakeRandom = seededRandom(options.seed + 1);
    this.lastActive = -1 - (options.idleBeforeMinutes ?? 0);
    this.asleep = (options.idleBeforeMinutes ?? 0) >= QUEUE_SLEEP_MINUTES;
  }

  /** Minute k ended; `active`: sent to, received from, or holding messages. Whether SQS published its datapoint. */
  record(k: number, active: boolean): boolean {
    if (active) {
      if (this.asleep) {
        const delayMinutes = 1 + Math.floor(this.wakeRandom() * WAKE_UP_MAX_DELAY_MINUTES);
        this.wakeUps.push({ minute: k, delayMinutes });
        this.wokeAt = k;
        this.visibleFrom = k + delayMinutes;
      }
      this.lastActive = k;
      this.asleep = false;
      return true;
    }
    if (k - this.lastActive >= QUEUE_SLEEP_MINUTES) this.asleep = true;
    return !this.asleep;
  }

  /** At the end of minute k: how many minutes behind the alarms are (the datapoints of minutes ≤ k − lag are seen). */
  lagAt(k: number): number {
    this.horizon = Math.max(this.horizon, k - this.nextDelay());
    if (k < this.visibleFrom) this.horizon = Math.min(this.horizon, this.wokeAt - 1);
    return k - this.horizon;
  }
}
