/**
 * Jobs whose earlier workers died holding them, kept apart so one that kills its worker every time does not take
 * the same batch-mates down on every delivery. The jobs held by a worker that dies become visible again together,
 * after the same visibility timeout, so the next receive hands them to one worker together: left alone, they follow
 * the crashing job through all its deliveries into the DLQ.
 * - A job that lost its worker ISOLATE_AFTER times or more is a suspect. At most one suspect runs on a worker at a
 *   time; another suspect claimed meanwhile is handed back with a random delay of up to one visibility timeout, so
 *   the group scatters in time and across workers. A hand-back never sends a message to the DLQ (settlement sends
 *   a fresh copy of a last delivery), so being deferred costs a job time, not its life.
 * - Before a suspect calls its provider, the deferrals already under way on this worker finish, so its batch-mates
 *   are safely back on the queue before it can take the process down.
 * - After the first loss a job is not yet a suspect: a worker that is killed (spot reclaim, OOM of the host) leaves
 *   hundreds of innocent jobs with one loss each, and running them one at a time would stall the fleet.
 */

/** Losses at which a job runs only alone among suspects on a worker (see above for why not 1). */
export const ISOLATE_AFTER = 2;

export class Suspects {
  private running = false;
  private readonly deferrals = new Set<Promise<unknown>>();

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
    this.deferrals.add(deferral);
    void deferral.finally(() => this.deferrals.delete(deferral)).catch(() => undefined);
    return deferral;
  }

  /**
   * Resolves once the deferrals started so far have settled. Waits a macrotask first: the batch-mates claimed in the
   * same store round trip start their deferrals in the microtasks that follow it.
   */
  async quiet(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await Promise.allSettled([...this.deferrals]);
  }
}
