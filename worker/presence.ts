/**
 * The worker's presence: its row in `workers` rewritten every `intervalMs` (state, load, providers, counters) so a
 * person can see the fleet (`fleet status`). A failed write is logged once per outage and tried again next round;
 * it never touches a job. When `signal` aborts the row is removed: a clean stop leaves no ghost, and a killed
 * worker's row ages out (three intervals).
 */
import { hostname } from "node:os";
import { delay } from "../shared/backoff.ts";
import { coerceError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { PresenceStore, WorkerPresence } from "../shared/store/presence.ts";
import type { WorkerSnapshot } from "./worker.ts";

export interface PresenceOptions {
  store: Pick<PresenceStore, "beat" | "remove" | "prune">;
  snapshot: () => WorkerSnapshot;
  intervalMs: number;
  /** The ops server's port, when one listens. */
  opsPort?: number;
  log: Logger;
}

/** Rows of workers gone this long are deleted when a worker starts (they only say "gone" until then). */
const PRUNE_AFTER_MS = 3_600_000;

/** Writes the row until `signal` aborts, then removes it; resolves once removed. */
export async function runPresence(o: PresenceOptions, signal: AbortSignal): Promise<void> {
  const startedAt = new Date();
  await o.store.prune(PRUNE_AFTER_MS).catch(() => undefined);
  let failing = false;
  while (!signal.aborted) {
    try {
      await o.store.beat(presenceOf(o.snapshot(), o, startedAt));
      if (failing) o.log.info("presence row written again");
      failing = false;
    } catch (err) {
      if (!failing) o.log.warn({ err: coerceError(err) }, "presence row not written; trying again next round");
      failing = true;
    }
    await delay(o.intervalMs, signal);
  }
  await o.store.remove(o.snapshot().workerId).catch((err: unknown) => o.log.warn({ err: coerceError(err) }, "presence row not removed; it ages out"));
}

function presenceOf(s: WorkerSnapshot, o: PresenceOptions, startedAt: Date): WorkerPresence {
  return {
    workerId: s.workerId,
    host: hostname(),
    pid: process.pid,
    startedAt: s.startedAt ?? startedAt,
    intervalMs: o.intervalMs,
    state: s.state,
    held: s.held,
    inFlight: s.inFlight,
    concurrencyLimit: s.limit,
    intakePaused: s.intakePaused,
    storeWritesHealthy: s.storeWritesHealthy,
    providers: s.providers.routes.map((r) => ({
      name: r.name,
      state: r.state,
      inFlight: r.inFlight,
      maxInFlight: r.maxInFlight,
      ...(r.lastErrorCode === undefined ? {} : { lastErrorCode: r.lastErrorCode }),
      spentUsdThisHour: r.spentUsdThisHour,
    })),
    jobs: s.jobs,
    queueWaitMs: s.queueWaitMs,
    ...(o.opsPort === undefined ? {} : { opsPort: o.opsPort }),
  };
}
