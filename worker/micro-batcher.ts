/**
 * Groups single calls made by concurrent jobs into one batched call (one SQL round trip for many jobs),
 * flushing when `maxBatch` items wait or after `lingerMs`. The first item after a quiet spell (nothing sent for
 * `lingerMs`, nothing in flight) goes at once, with whatever joins it in the same turn of the event loop: an idle
 * worker's lone job pays no linger, while under load batches still form. The batched function returns one result per
 * item, in order, or nothing for a write with no per-item answer. An item whose result is an Error fails alone
 * (the store isolates a row it cannot write); a thrown failure rejects every item of that batch. Retries are the
 * caller's policy.
 */
export interface MicroBatcherOptions<I, O> {
  run: (items: I[]) => Promise<(O | Error)[] | void>;
  maxBatch: number;
  lingerMs: number;
  /** Told after each batch: its size, how long the call took and whether it threw (metrics; must not throw). */
  onBatch?: (size: number, seconds: number, ok: boolean) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private inFlight = new Set<Promise<void>>();
  private lastFlushAt = -Infinity;

  constructor(private readonly options: MicroBatcherOptions<I, O>) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.flush();
      else if (this.timer === undefined && this.immediate === undefined) {
        if (this.quiet()) this.immediate = setImmediate(() => this.flush());
        else this.timer = setTimeout(() => this.flush(), this.options.lingerMs);
      }
    });
  }

  /** Send what waits now. */
  flush(): void {
    this.clearTimer();
    if (this.queue.length > 0) this.lastFlushAt = performance.now();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      const done = this.runBatch(batch).finally(() => this.inFlight.delete(done));
      this.inFlight.add(done);
    }
  }

  /** Flush and wait for every batch under way (shutdown). */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private quiet(): boolean {
    return this.inFlight.size === 0 && performance.now() - this.lastFlushAt >= this.options.lingerMs;
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private async runBatch(batch: Pending<I, O>[]): Promise<void> {
    const startedAt = performance.now();
    let results: (O | Error)[] | void;
    try {
      results = await this.options.run(batch.map((p) => p.item));
    } catch (err) {
      this.options.onBatch?.(batch.length, (performance.now() - startedAt) / 1000, false);
      for (const p of batch) p.reject(err);
      return;
    }
    this.options.onBatch?.(batch.length, (performance.now() - startedAt) / 1000, true);
    batch.forEach((p, i) => {
      const result = results?.[i];
      if (result instanceof Error) p.reject(result);
      else p.resolve(result as O);
    });
  }
}
