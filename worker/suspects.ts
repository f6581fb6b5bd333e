/**
 * Jobs whose earlier workers died holding them, kept apart so one that kills its worker every time does not take
 * the same batch-mates down on every delivery. The jobs held by a worker that dies become visible again together,
 * after the same visibility timeout, so the next receive hands them to one worker together: left alone, they follow
 * the crashing job through all its deliveries into the DLQ.
 * - A job that lost its worker ISOLATE_AFTER times or more is a suspect. At most one suspect runs on a worker at a
 *   time; another suspect claimed meanwhile is handed back with a random delay of up to one visibility timeout, so
 *   the group scatters in time and across workers. A hand-back never sends a message to the DLQ (settlement sends
 *   a fresh copy of a last delivery), so being deferred costs a job time, not its life.
 * - Before a suspect calls its provider, the claims and then the deferrals already under way on this worker finish,
 *   so its batch-mates (from its own receive or one beside it) are safely back on the queue before it can take the
 *   process down. A deferral sends a fresh copy: the deliveries it spent went to workers dying around it, and the
 *   store's loss count, not SQS's receive count, is what bounds a suspect.
 * - After the first loss a job is not yet a suspect: a worker that is killed (spot reclaim, OOM of the host) leaves
 *   hundreds of innocent jobs with one loss each, and running them one at a time would stall the fleet.
 */

/** Losses at which a job runs only alone among suspects on a worker (see above for why not 1). */
export const ISOLATE_AFTER = 2;

export class Suspects {
  private running = false;
  private readonly deferrals = new Set<Promise<unknown>>();
  private readonly claims = new Set<Promise<unknown>>();

  constructor(private readonly random: () => number = Math.random) {}

  isSuspect(workerLosses: number): boolean {
    return workerLosses >= ISOLATE_AFTER;
  }

  /** Takes the one suspect slot when it is free; the caller must `leave()` once the job is settled. */
  tryEnter(): boolean {
    if (this.running) return false;
    this.running = true;
    return true;
  }

  leave(): void {
    this.running = false;
  }

  /** Seconds to hand a deferred suspect back for: 1 to `visibilitySeconds`, at random, to scatter the group. */
  deferSeconds(visibilitySeconds: number): number {
    return 1 + Math.floor(this.random() * Math.max(1, visibilitySeconds));
  }

  /** Tracks a deferral (store release + hand-back) until it settles. */
  track<T>(deferral: Promise<T>): Promise<T> {
    return during(this.deferrals, deferral);
  }

  /** Tracks a claim until it settles: a claimed suspect may be deferred, and quiet() waits for that. */
  claiming<T>(claim: Promise<T>): Promise<T> {
    return during(this.claims, claim);
  }

  /**
   * Resolves once the claims under way have settled and the deferrals they started (or started before) have too. The
   * macrotask between lets each claimed job's continuation decide, and start its deferral.
   */
  async quiet(): Promise<void> {
    await Promise.allSettled([...this.claims]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await Promise.allSettled([...this.deferrals]);
  }
}

/** Keeps `p` in `set` until it settles. */
function during<T>(set: Set<Promise<unknown>>, p: Promise<T>): Promise<T> {
  set.add(p);
  void p.finally(() => set.delete(p)).catch(() => undefined);
  return p;
}
