/**
 * Adaptive concurrency from the backend's own gauges. vLLM queues without bound, so flooding it only moves
 * the queue from SQS (where other workers could take the jobs) into one server (where they wait and hold
 * visibility). Additive increase while the server's waiting queue is short and our slots are full,
 * proportional decrease when it grows. Without /metrics the static limit stands.
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
  // Grow only when the limit is what holds us back: our slots are (nearly) all taken.
  if (held >= limit * 0.9 && gauges.waiting <= o.targetWaiting / 2) {
    return Math.min(max, slowStart ? limit * 2 : limit + Math.max(1, Math.ceil(limit * 0.1)));
  }
  return limit;
}

export async function runBackpressure(o: BackpressureOptions, signal: AbortSignal): Promise<void> {
  let fallback = false;
  let slowStart = true;
  o.capacity.setLimit(Math.max(o.minLimit, Math.min(o.capacity.max, SLOW_START_LIMIT)));
  while (!signal.aborted) {
    const gauges = await Promise.resolve()
      .then(() => o.readGauges(signal))
      .catch(() => undefined);
    if (gauges === undefined) {
      if (!fallback) o.log.info({ limit: o.capacity.max }, "backend metrics unavailable; using the static concurrency limit");
      fallback = true;
      o.capacity.setLimit(o.capacity.max);
    } else {
      fallback = false;
      const next = nextLimit(o.capacity.limit, gauges, { ours: o.ourInFlight(), held: o.capacity.inUse }, o, o.capacity.max, slowStart);
      if (next < o.capacity.limit) slowStart = false;
      o.capacity.setLimit(next);
    }
    await delay(o.intervalMs, signal);
  }
}
