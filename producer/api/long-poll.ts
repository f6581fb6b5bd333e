/**
 * `GET /v1/jobs/:id?wait=N`: read the tenant's job; while it is not terminal, wait on the completion feed (no query
 * until the id is announced) and read again, until it ends, the wait runs out, the client goes away or the server
 * closes. Another tenant's job reads as absent, exactly like a job that does not exist (a 404 either way, after
 * the same wait), so ids cannot be probed across tenants.
 */
import type { ResultReader } from "../results.ts";
import { isTerminal, type JobRecord } from "../../shared/store/job-record.ts";
import type { CompletionFeed } from "./completion-feed.ts";

export interface LongPollDeps {
  reader: Pick<ResultReader, "find">;
  feed: CompletionFeed;
}

export async function readOwnJob(d: LongPollDeps, id: string, tenant: string, waitMs: number, signal: AbortSignal): Promise<JobRecord | undefined> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const remaining = deadline - performance.now();
    // Watch before reading: an announcement landing between the read and the wait still wakes it.
    const watch = remaining > 0 && !signal.aborted && !d.feed.isClosed ? d.feed.watch(id) : undefined;
    try {
      const found = await d.reader.find(id);
      const record = found?.record.tenant === tenant ? found.record : undefined;
      if (watch === undefined || (record !== undefined && isTerminal(record.status))) return record;
      // Announced, timed out, client gone or server closing: the next turn reads again (and, past those, answers).
      await watch.wait(remaining, signal);
    } finally {
      watch?.close();
    }
  }
}
