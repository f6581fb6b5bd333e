/**
 * Reading results by request id: Redis first (hot path), Postgres second (source of truth). `waitFor` wakes on
 * Redis completion notifications and re-checks Postgres on a timer, so it works with Redis down too.
 */
import type { JobRecord } from "../shared/store/job-record.ts";
import { isTerminal } from "../shared/store/job-record.ts";
import type { JobStore } from "../shared/store/jobs.ts";
import type { ResultsCache } from "../shared/store/results-cache.ts";
import { delay } from "../shared/backoff.ts";

export interface WaitOptions {
  signal?: AbortSignal;
  /** Postgres re-check interval while waiting. */
  pollMs?: number;
  onProgress?: (done: number, total: number) => void;
}

export class ResultReader {
  constructor(
    private readonly store: JobStore,
    private readonly cache?: ResultsCache,
  ) {}

  async get(id: string): Promise<JobRecord | undefined> {
    const hot = await this.cache?.get(id);
    if (hot !== undefined && isTerminal(hot.status)) return hot;
    return (await this.store.get(id)) ?? hot;
  }

  /** Resolves with every id's terminal record, or what is known when `signal` aborts. */
  async waitFor(ids: string[], o: WaitOptions = {}): Promise<Map<string, JobRecord>> {
    const done = new Map<string, JobRecord>();
    const pending = new Set(ids);
    let wake: (() => void) | undefined;
    const unsubscribe = await this.cache?.subscribe(() => wake?.());
    try {
      while (pending.size > 0 && !o.signal?.aborted) {
        for (const r of await this.lookup([...pending])) {
          if (isTerminal(r.status) && pending.delete(r.id)) done.set(r.id, r);
        }
        o.onProgress?.(done.size, ids.length);
        if (pending.size === 0) break;
        await this.sleep(o.pollMs ?? 500, o.signal, (finish) => (wake = finish));
        await delay(25, o.signal); // coalesce a burst of notifications into one lookup
      }
    } finally {
      await unsubscribe?.();
    }
    return done;
  }

  /** Sleeps `ms`, cut short by a notification (`onWake` receives the waker) or by `signal`. */
  private sleep(ms: number, signal: AbortSignal | undefined, onWake: (finish: () => void) => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      signal?.addEventListener("abort", finish, { once: true });
      onWake(finish);
    });
  }

  private async lookup(ids: string[]): Promise<JobRecord[]> {
    const hot = (await this.cache?.getMany(ids)) ?? [];
    const found = hot.filter((r): r is JobRecord => r !== undefined && isTerminal(r.status));
    const foundIds = new Set(found.map((r) => r.id));
    const rest = ids.filter((id) => !foundIds.has(id));
    for (let i = 0; i < rest.length; i += 1000) found.push(...(await this.store.getMany(rest.slice(i, i + 1000))));
    return found;
  }
}
