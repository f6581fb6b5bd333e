/**
 * OpenAI's batch object. request_counts are live while the batch moves (the jobs table, read by the caller) and
 * frozen once its files are assembled: completed = lines in the output file, failed = lines in the error file.
 */
import type { BatchRow, Progress } from "./batch-store.ts";

const ENDED = new Set(["completed", "failed", "expired", "cancelled"]);

export function isEnded(b: Pick<BatchRow, "status">): boolean {
  return ENDED.has(b.status);
}

/** Does showing this batch need its live progress (one query)? */
export function needsProgress(b: BatchRow): boolean {
  return !isEnded(b) && b.in_progress_at !== null;
}

export function batchObject(b: BatchRow, live?: Progress): Record<string, unknown> {
  const seconds = (d: Date | null) => (d === null ? null : Math.floor(d.getTime() / 1000));
  const counts =
    b.completed !== null && b.failed !== null
      ? { total: b.total, completed: b.completed, failed: b.failed }
      : { total: b.total, completed: live?.completed ?? 0, failed: b.invalid + (live?.failed ?? 0) };
  return {
    id: b.id,
    object: "batch",
    endpoint: b.endpoint,
    errors: b.errors,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status: b.status,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    created_at: seconds(b.created_at),
    in_progress_at: seconds(b.in_progress_at),
    expires_at: seconds(b.expires_at),
    finalizing_at: seconds(b.finalizing_at),
    completed_at: seconds(b.completed_at),
    failed_at: seconds(b.failed_at),
    expired_at: seconds(b.expired_at),
    cancelling_at: seconds(b.cancelling_at),
    cancelled_at: seconds(b.cancelled_at),
    request_counts: counts,
    ...(b.usage === null ? {} : { usage: { ...b.usage, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } } }),
    metadata: b.metadata,
  };
}
