/**
 * "These jobs ended", once per API process, fanned out to whoever waits: long-polling requests (a `Watch` each, a
 * map entry and no query until its id is announced) and listeners such as the job webhooks. Sources announce:
 * Postgres LISTEN (every terminal write NOTIFYs) and Redis's `done` channel. A source that reconnects calls
 * `announceAll`: it may have missed ids, so every watcher looks once more.
 */
export class CompletionFeed {
  private readonly watches = new Map<string, Set<Watch>>();
  private readonly listeners = new Set<(ids: string[]) => void>();
  private closed = false;

  /** Register interest in `id` before reading it, so an announcement between the read and the wait is not lost. */
  watch(id: string): Watch {
    const w = new Watch(id, () => this.forget(w));
    if (this.closed) w.fire();
    else {
      const set = this.watches.get(id) ?? new Set<Watch>();
      set.add(w);
      this.watches.set(id, set);
    }
    return w;
  }

  announce(ids: Iterable<string>): void {
    const list = [...ids];
    for (const id of list) for (const w of this.watches.get(id) ?? []) w.fire();
    for (const l of this.listeners) l(list);
  }

  /** A source may have missed announcements: every watch re-reads once (listeners catch up by their own sweep). */
  announceAll(): void {
    for (const set of this.watches.values()) for (const w of set) w.fire();
  }

  /** Calls `fn` with every batch of announced ids; returns the unsubscriber. */
  onDone(fn: (ids: string[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Requests waiting right now (ids watched, counted per request). */
  get waiting(): number {
    let n = 0;
    for (const set of this.watches.values()) n += set.size;
    return n;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The server is closing: every waiting request answers now with what it has, and new ones do not wait. */
  close(): void {
    this.closed = true;
    this.announceAll();
  }

  private forget(w: Watch): void {
    const set = this.watches.get(w.id);
    set?.delete(w);
    if (set?.size === 0) this.watches.delete(w.id);
  }
}

export class Watch {
  private fired = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly unregister: () => void,
  ) {}

  get wasFired(): boolean {
    return this.fired;
  }

  fire(): void {
    this.fired = true;
    this.wake?.();
  }

  /** Resolves when the id is announced (at once if it already was), after `ms`, or when `signal` aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.fired || signal.aborted || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.wake = done;
    });
  }

  /** Stop watching; always call it (a finally), or the feed keeps the entry. */
  close(): void {
    this.wake?.();
    this.unregister();
  }
}
