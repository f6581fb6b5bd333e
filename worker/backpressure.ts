/**
 * Adaptive concurrency from the backend's own gauges. vLLM queues without bound, so flooding it only moves
 * the queue from SQS (where other workers could take the jobs) into one server (where they wait and hold
 * visibility). Additive increase while the server's waiting queue is short and our slots are full,
 * proportional decrease when it grows. Without /metrics the static limit stands; metrics that fail after they
 * worked hold the limit, then lower it (LimitControl).
 */
import type { Capacity } from "./capacity.ts";
import type { Logger } from "../shared/logger.ts";
import { delay } from "../shared/backoff.ts";

export interface BackendGauges {
  running: number;
  waiting: number;
}

export interface BackpressureOptions {
  capacity: Capacity;
  readGauges: (signal: AbortSignal) => Promise<BackendGauges | undefined>;
  /** Our own provider calls in flight (share of the server's load that is ours). */
  ourInFlight: () => number;
  intervalMs: number;
  /** Waiting requests we tolerate on the server: enough to fill the next steps, short enough to move fast. */
  targetWaiting: number;
  minLimit: number;
  log: Logger;
}

/** Where a worker starts before the backend has told it anything: low enough not to flood a shared server. */
export const SLOW_START_LIMIT = 64;

/**
 * One control step. `slowStart` (until the first cut) doubles the limit while the server keeps up, like TCP's slow
 * start, so a restarting worker reaches a big engine's batch in a few steps without dumping its whole limit on it.
 */
export function nextLimit(
  limit: number,
  gauges: BackendGauges,
  /** `ours`: our provider calls in flight (our share of the server's load); `held`: our slots in use. */
  { ours, held }: { ours: number; held: number },
  o: Pick<BackpressureOptions, "targetWaiting" | "minLimit">,
  max: number,
  slowStart = false,
): number {
  const total = gauges.running + gauges.waiting;
  if (gauges.waiting > o.targetWaiting) {
    const share = total > 0 ? Math.min(1, ours / total) : 1;
    const cut = Math.ceil((gauges.waiting - o.targetWaiting) * share);
    return Math.max(o.minLimit, Math.min(limit, ours) - cut);
  }
  // Grow only when the limit is what holds us back (our slots are nearly all taken), and not on a reading taken
  // before our calls reached the server: many of ours in flight that the server does not show yet say nothing about
  // its queue, and growing on them floods a server about to be full (seen at start-up: peak waiting 112 with a limit
  // of 64). A fast backend that finishes calls as they come shows few of ours in flight, and still grows.
  if (held >= limit * 0.9 && gauges.waiting <= o.targetWaiting / 2 && ours <= total + o.targetWaiting) {
    return Math.min(max, slowStart ? limit * 2 : limit + Math.max(1, Math.ceil(limit * 0.1)));
  }
  return limit;
}

/** Failed reads of /metrics in a row that keep the limit (a blip); each further one halves it towards minLimit. */
export const FAILURES_KEPT = 2;

/** One read of the gauges: values, "this backend has no /metrics" (undefined), or a failure. */
type Reading = BackendGauges | undefined | "failed";

/**
 * The limit's state machine. A failed read (timeout, 5xx, refused) comes exactly when the server is overloaded or
 * restarting, so it never raises the limit: the first FAILURES_KEPT in a row keep it, later ones halve the distance
 * to minLimit (an outage of a few seconds lands near the floor). When the gauges come back after such an outage
 * the server may have restarted empty: slow start again from min(SLOW_START_LIMIT, limit). Only a backend that
 * has never given gauges and answers "no /metrics" gets the static limit; once gauges were seen, their absence
 * is a failure like any other.
 */
class LimitControl {
  private slowStart = true;
  private seenGauges = false;
  private isStatic = false;
  private failures = 0;

  constructor(private readonly o: BackpressureOptions) {
    o.capacity.setLimit(Math.max(o.minLimit, Math.min(o.capacity.max, SLOW_START_LIMIT)));
  }

  step(reading: Reading): void {
    if (reading === "failed" || (reading === undefined && this.seenGauges)) this.failed();
    else if (reading === undefined) this.noMetrics();
    else this.measured(reading);
  }

  private measured(gauges: BackendGauges): void {
    const { capacity, minLimit } = this.o;
    if (this.failures > FAILURES_KEPT || this.isStatic) {
      this.o.log.info({ failures: this.failures }, "backend metrics back; slow start again");
      this.slowStart = true;
      capacity.setLimit(Math.max(minLimit, Math.min(capacity.limit, SLOW_START_LIMIT)));
    }
    this.seenGauges = true;
    this.isStatic = false;
    this.failures = 0;
    const next = nextLimit(capacity.limit, gauges, { ours: this.o.ourInFlight(), held: capacity.inUse }, this.o, capacity.max, this.slowStart);
    if (next < capacity.limit) this.slowStart = false;
    capacity.setLimit(next);
  }

  private failed(): void {
    const { capacity, minLimit } = this.o;
    this.failures += 1;
    if (this.failures === 1) this.o.log.warn({ limit: capacity.limit }, "backend metrics failing; concurrency limit held, never raised");
    if (this.failures > FAILURES_KEPT) capacity.setLimit(Math.max(minLimit, Math.floor((capacity.limit + minLimit) / 2)));
  }

  private noMetrics(): void {
    if (!this.isStatic) this.o.log.info({ limit: this.o.capacity.max }, "backend has no metrics; using the static concurrency limit");
    this.isStatic = true;
    this.failures = 0;
    this.o.capacity.setLimit(this.o.capacity.max);
  }
}

export async function runBackpressure(o: BackpressureOptions, signal: AbortSignal): Promise<void> {
  const control = new LimitControl(o);
  while (!signal.aborted) {
    const reading: Reading = await Promise.resolve()
      .then(() => o.readGauges(signal))
      .catch(() => "failed" as const);
    if (signal.aborted) break;
    control.step(reading);
    await delay(o.intervalMs, signal);
  }
}
