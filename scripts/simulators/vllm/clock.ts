/**
 * The engine's notion of time, in simulated milliseconds. `WallClock` maps it onto real time (timeScale wall ms per
 * simulated ms) with one timer per step; `VirtualClock` runs events in time order without waiting, so calibration and
 * tests can drive the very same engine through minutes of simulated load in milliseconds of CPU.
 */
export type Cancel = () => void;

export interface StepClock {
  /** Simulated ms since the clock started. */
  now(): number;
  /** Run `fn` at simulated time `atMs` (at once if that is past, after pending I/O). */
  at(atMs: number, fn: () => void): Cancel;
  /** Run `fn` after the current turn (a burst arriving together lands in one step). */
  soon(fn: () => void): Cancel;
}

export class WallClock implements StepClock {
  private readonly epoch = performance.now();

  constructor(private readonly timeScale: number) {}

  now(): number {
    return (performance.now() - this.epoch) / this.timeScale;
  }

  at(atMs: number, fn: () => void): Cancel {
    const delayMs = this.epoch + atMs * this.timeScale - performance.now();
    // Below a millisecond a timer would overshoot (Node clamps to 1 ms); setImmediate lets I/O in and catches up.
    if (delayMs < 1) return this.soon(fn);
    const handle = setTimeout(fn, delayMs);
    return () => clearTimeout(handle);
  }

  soon(fn: () => void): Cancel {
    const handle = setImmediate(fn);
    return () => clearImmediate(handle);
  }
}

interface VirtualEvent {
  atMs: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

/** Discrete-event time: `run()` executes events in (time, insertion) order until none are left or a limit is hit. */
export class VirtualClock implements StepClock {
  private nowMs = 0;
  private order = 0;
  // A binary heap keyed by (atMs, order).
  private readonly heap: VirtualEvent[] = [];

  now(): number {
    return this.nowMs;
  }

  at(atMs: number, fn: () => void): Cancel {
    const event: VirtualEvent = { atMs: Math.max(atMs, this.nowMs), order: this.order++, fn, cancelled: false };
    this.push(event);
    return () => {
      event.cancelled = true;
    };
  }

  soon(fn: () => void): Cancel {
    return this.at(this.nowMs, fn);
  }

  /** Run events until the queue is empty or the next one is after `untilMs`; returns the events run. */
  run(untilMs = Infinity): number {
    let ran = 0;
    while (this.heap.length > 0 && this.heap[0]!.atMs <= untilMs) {
      const event = this.pop();
      if (event.cancelled) continue;
      this.nowMs = event.atMs;
      event.fn();
      ran++;
    }
    if (Number.isFinite(untilMs) && untilMs > this.nowMs) this.nowMs = untilMs;
    return ran;
  }

  private less(a: VirtualEvent, b: VirtualEvent): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
  }

  private push(event: VirtualEvent): void {
    const h = this.heap;
    h.push(event);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): VirtualEvent {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
