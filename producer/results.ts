/**
 * Reading results by request id: Redis first (hot path), Postgres second (source of truth). Either may be down:
 * a read falls back to whichever answers, and says which did. `waitFor` wakes on Redis completion notifications
 * and re-checks Postgres on a timer, so it works with either one down for a while.
 */
import type { JobRecord } from "../shared/store/job-record.ts";
import { isTerminal } from "../shared/store/job-record.ts";
import type { JobStore } from "../shared/store/jobs.ts";
import type { ResultsCache } from "../shared/store/results-cache.ts";
import { StoreError } from "../shared/errors.ts";
import { toStoreError } from "../shared/store/store-errors.ts";
import { delay } from "../shared/backoff.ts";

export interface WaitOptions {
  signal?: AbortSignal;
  /** Postgres re-check interval while waiting. */
  pollMs?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * Declare an id unknown, and stop waiting for it, when Postgres (answering) and Redis have no record of it this
   * long after the wait began. A job gets its row when a worker first claims it, so this must exceed the time a
   * message can sit in the queue unclaimed. Unset: never (wait for every id until the signal).
   */
  unknownAfterMs?: number;
  /** Called for each failed Postgres read while waiting (the wait goes on with what Redis knows). */
  onStoreError?: (err: StoreError) => void;
}

export interface WaitResult {
  /** The terminal record of each id that finished. */
  records: Map<string, JobRecord>;
  /** Ids with no record anywhere after `unknownAfterMs`, in input order. */
  unknown: string[];
}

export type RecordSource = "redis" | "postgres";
export interface FoundRecord {
  record: JobRecord;
  source: RecordSource;
  /** Why Postgres did not answer, when the record came from Redis because Postgres failed. */
  storeError?: StoreError;
}

export class ResultReader {
  constructor(
    private readonly store: JobStore,
    private readonly cache?: ResultsCache,
  ) {}

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.find(id))?.record;
  }

  /**
   * The job's record and who answered. A finished record in Redis is final; otherwise Postgres decides, and when
   * Postgres fails, Redis's record (if any) answers. With neither, a Postgres failure is a StoreError naming the id.
   */
  async find(id: string): Promise<FoundRecord | undefined> {
    const hot = await this.cache?.get(id);
    if (hot !== undefined && isTerminal(hot.status)) return { record: hot, source: "redis" };
    let cold: JobRecord | undefined;
    try {
      cold = await this.store.get(id);
    } catch (err) {
      const storeError = toStoreError(err, "jobs_get");
      if (hot !== undefined) return { record: hot, source: "redis", storeError };
      throw unreachable(storeError, `reading job ${id}`);
    }
    if (cold !== undefined) return { record: cold, source: "postgres" };
    return hot && { record: hot, source: "redis" };
  }

  /** Resolves with every id's terminal record, or what is known when `signal` aborts. */
  async waitFor(ids: string[], o: WaitOptions = {}): Promise<Map<string, JobRecord>> {
    return (await this.waitForAll(ids, o)).records;
  }

  /** Like waitFor, and also ends the wait for ids that turn out unknown (see `unknownAfterMs`). */
  async waitForAll(ids: string[], o: WaitOptions = {}): Promise<WaitResult> {
    const started = Date.now();
    const done = new Map<string, JobRecord>();
    const pending = new Set(ids);
    const seen = new Set<string>(); // ids some store has a record of: never unknown again
    const unknown = new Set<string>();
    let wake: (() => void) | undefined;
    const unsubscribe = await this.cache?.subscribe(() => wake?.());
    try {
      while (pending.size > 0 && !o.signal?.aborted) {
        const { records, storeAnswered } = await this.lookup([...pending], o.onStoreError);
        for (const r of records) {
          seen.add(r.id);
          if (isTerminal(r.status) && pending.delete(r.id)) done.set(r.id, r);
        }
        // Only a Postgres answer can show that a job has no row: Redis alone knows finished jobs only.
        if (storeAnswered && o.unknownAfterMs !== undefined && Date.now() - started >= o.unknownAfterMs) {
          for (const id of pending) if (!seen.has(id) && pending.delete(id)) unknown.add(id);
        }
        o.onProgress?.(done.size, ids.length);
        if (pending.size === 0) break;
        await this.sleep(o.pollMs ?? 500, o.signal, (finish) => (wake = finish));
        await delay(25, o.signal); // coalesce a burst of notifications into one lookup
      }
    } finally {
      await unsubscribe?.();
    }
    return { records: done, unknown: ids.filter((id) => unknown.has(id)) };
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

  /** Finished records from Redis, then every record Postgres has for the rest; a Postgres failure leaves Redis's. */
  private async lookup(ids: string[], onStoreError?: (err: StoreError) => void): Promise<{ records: JobRecord[]; storeAnswered: boolean }> {
    const hot = (await this.cache?.getMany(ids)) ?? [];
    const found = hot.filter((r): r is JobRecord => r !== undefined && isTerminal(r.status));
    const foundIds = new Set(found.map((r) => r.id));
    const rest = ids.filter((id) => !foundIds.has(id));
    try {
      for (let i = 0; i < rest.length; i += 1000) found.push(...(await this.store.getMany(rest.slice(i, i + 1000))));
      return { records: found, storeAnswered: true };
    } catch (err) {
      const storeError = toStoreError(err, "jobs_get");
      if (!storeError.retryable) throw storeError; // a broken query, not an outage: waiting will not fix it
      onStoreError?.(storeError);
      return { records: found, storeAnswered: false };
    }
  }
}

/** A StoreError for a read nobody could answer; an outage is named as such (never with the connection string). */
function unreachable(err: StoreError, what: string): StoreError {
  if (err.code !== "STORE_UNAVAILABLE") return err;
  return new StoreError("STORE_UNAVAILABLE", `the job store (Postgres) is unreachable ${what}, and Redis has no record of it: ${err.message}`, true, { cause: err });
}
