/**
 * A clock tests move by hand (`advance`) or let run in virtual time (`run`): sleeps are timers that fire only
 * when the clock passes them, so a 60 s cool-down or a 10 s Retry-After costs no real time.
 */
import type { Clock } from "../../shared/providers/clock.ts";

interface Timer {
  at: number;
  fire: () => void;
}

export class FakeClock implements Clock {
  private t: number;
  private readonly timers = new Set<Timer>();

  /** Default start: mid-hour, so an hour boundary is not crossed by accident. */
  constructor(start = Date.UTC(2026, 0, 1, 12, 30, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer: Timer = {
        at: this.t + ms,
        fire: () => {
          this.timers.delete(timer);
          signal?.removeEventListener("abort", timer.fire);
          resolve();
        },
      };
      this.timers.add(timer);
      signal?.addEventListener("abort", timer.fire, { once: true });
    });
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing each timer due on the way at its own time. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (let next = this.earliest(); next !== undefined && next.at <= target; next = this.earliest()) {
      this.t = next.at;
      next.fire();
      await idle();
    }
    this.t = target;
  }

  /** Settles `work` in virtual time: whenever nothing else can progress, jumps to the next timer. */
  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const done = work.finally(() => (settled = true));
    done.catch(() => undefined);
    while (!settled) {
      await idle();
      const next = this.earliest();
      if (!settled && next !== undefined) await this.advance(next.at - this.t);
    }
    return done;
  }

  private earliest(): Timer | undefined {
    let first: Timer | undefined;
    for (const timer of this.timers) if (first === undefined || timer.at < first.at) first = timer;
    return first;
  }
}

/** Lets every promise chain that can progress do so (two turns of the event loop). */
export async function idle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
