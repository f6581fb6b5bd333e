/**
 * A batch's `validating` step, in SQL over the lines its upload already checked (request-line.ts): the problems
 * that fail the whole batch, each with its line number — line errors found at upload, a url other than the
 * batch's endpoint, a custom_id already used on an earlier line — and the request counts when there are none.
 * Nothing is parsed again and no line body is read, so it costs one pass over the file's index columns.
 */
import type pg from "pg";
import type { BatchError } from "./batch-store.ts";

/** errors.data[] lists at most this many; one more entry says how many were left out. */
export const MAX_REPORTED_ERRORS = 100;

const PROBLEMS_SQL = `
WITH lines AS (SELECT line, custom_id, url, line_error FROM api_file_lines WHERE file_id = $1),
problems AS (
  SELECT line, line_error->>'code' AS code, line_error->>'message' AS message, line_error->>'param' AS param
    FROM lines WHERE line_error IS NOT NULL
  UNION ALL
  SELECT line, 'mismatched_endpoint', format('line %s: url %s does not match the batch endpoint %s', line, url, $2::text), 'url'
    FROM lines WHERE line_error IS NULL AND custom_id IS NOT NULL AND url IS DISTINCT FROM $2::text
  UNION ALL
  SELECT line, 'duplicate_custom_id', format('line %s: custom_id is the same as on line %s', line, first), 'custom_id'
    FROM (SELECT line, min(line) OVER (PARTITION BY custom_id) AS first FROM lines WHERE custom_id IS NOT NULL) d
   WHERE line > first
)
SELECT line, code, message, param, count(*) OVER ()::int AS n FROM problems ORDER BY line, code LIMIT $3`;

const COUNTS_SQL = `
SELECT count(*)::int AS total, count(*) FILTER (WHERE request_error IS NOT NULL)::int AS invalid
  FROM api_file_lines WHERE file_id = $1 AND custom_id IS NOT NULL AND line_error IS NULL`;

export type Validation = { ok: false; errors: BatchError[] } | { ok: true; total: number; invalid: number };

export async function validateBatch(db: pg.ClientBase, inputFileId: string, endpoint: string): Promise<Validation> {
  const { rows } = await db.query<BatchError & { n: number }>(PROBLEMS_SQL, [inputFileId, endpoint, MAX_REPORTED_ERRORS]);
  if (rows.length > 0) {
    const errors: BatchError[] = rows.map(({ line, code, message, param }) => ({ code, message, param, line }));
    const more = (rows[0]?.n ?? 0) - rows.length;
    if (more > 0) errors.push({ code: "too_many_errors", message: `${more} more problems are not listed`, param: null, line: null });
    return { ok: false, errors };
  }
  const counts = (await db.query<{ total: number; invalid: number }>(COUNTS_SQL, [inputFileId])).rows[0] ?? { total: 0, invalid: 0 };
  if (counts.total === 0) return { ok: false, errors: [{ code: "empty_file", message: "the input file holds no requests", param: "input_file_id", line: null }] };
  return { ok: true, ...counts };
}
