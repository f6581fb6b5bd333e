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

export function nextLimit(limit: number, gauges: BackendGauges, ours: number, o: Pick<BackpressureOptions, "targetWaiting" | "minLimit">, max: number): number {
  const total = gauges.running + gauges.waiting;
  if (gauges.waiting > o.targetWaiting) {
    const share = total > 0 ? Math.min(1, ours / total) : 1;
    const cut = Math.ceil((gauges.waiting - o.targetWaiting) * share);
    return Math.max(o.minLimit, Math.min(limit, ours) - cut);
  }
  if (ours >= limit * 0.9 && gauges.waiting <= o.targetWaiting / 2) {
    return Math.min(max, limit + Math.max(1, Math.ceil(limit * 0.1)));
  }
  return limit;
}

export async function runBackpressure(o: BackpressureOptions, signal: AbortSignal): Promise<void> {
  let fallback = false;
  while (!signal.aborted) {
    const gauges = await o.readGauges(signal).catch(() => undefined);
    if (gauges === undefined) {
      if (!fallback) o.log.info({ limit: o.capacity.max }, "backend metrics unavailable; using the static concurrency limit");
      fallback = true;
      o.capacity.setLimit(o.capacity.max);
    } else {
      fallback = false;
      o.capacity.setLimit(nextLimit(o.capacity.limit, gauges, o.ourInFlight(), o, o.capacity.max));
    }
    await delay(o.intervalMs, signal);
  }
}
