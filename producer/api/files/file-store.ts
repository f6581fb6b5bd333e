/**
 * Files and their lines in Postgres (migration 0007). Every read is bounded in bytes, not only in rows: a page
 * ends once it holds `maxBytes` (a line up to the upload's line limit may overshoot it once), so a download or a
 * runner step never holds more than a page, whatever the file's size. Every query names the tenant: another
 * tenant's file is indistinguishable from a missing one.
 */
import type pg from "pg";
import { inTransaction } from "../../../shared/store/transaction.ts";
import { ACTIVE_BATCH_STATUSES } from "../batches/batch-store.ts";
import type { LineProblem } from "../batches/openai-body.ts";

export interface FileRow {
  id: string;
  tenant: string;
  purpose: "batch" | "batch_output";
  filename: string;
  bytes: number;
  lines: number;
  requests: number;
  created_at: Date;
}

/** A request line the runner sends (no line or request error). */
export interface RunnableLine {
  line: number;
  data: Buffer;
  custom_id: string;
}

/** A request line as the output is assembled from it. */
export interface RequestLine {
  line: number;
  custom_id: string;
  request_error: LineProblem | null;
}

const ACTIVE = `(${ACTIVE_BATCH_STATUSES.map((s) => `'${s}'`).join(", ")})`;

export const FILE_COLUMNS = "id, tenant, purpose, filename, bytes::float8 AS bytes, lines, requests, created_at";
/**
 * The lines after $2, in order, up to $3 rows, cut after the first line that reaches $4 bytes. The row limit is
 * applied first (a primary-key range scan), so a page costs its own rows, not the rest of the file; octet_length
 * reads a stored value's size without fetching it.
 */
const page = (columns: string, where: string) => `
SELECT ${columns} FROM (
  SELECT l.*, sum(octet_length(l.data)) OVER (ORDER BY l.line) - octet_length(l.data) AS before
    FROM (SELECT * FROM api_file_lines WHERE file_id = $1 AND line > $2 ${where} ORDER BY line LIMIT $3) l
) p WHERE before < $4 ORDER BY line`;
const CONTENT_PAGE_SQL = page("line, data", "");
const RUNNABLE_PAGE_SQL = page("line, data, custom_id", "AND custom_id IS NOT NULL AND line_error IS NULL AND request_error IS NULL");
const REQUEST_LINES_SQL = `
SELECT line, custom_id, request_error FROM api_file_lines
 WHERE file_id = $1 AND line > $2 AND custom_id IS NOT NULL AND line_error IS NULL ORDER BY line LIMIT $3`;

const CONTENT_PAGE_BYTES = 1024 * 1024;
const CONTENT_PAGE_ROWS = 2_000;

export class FileStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(tenant: string, id: string): Promise<FileRow | undefined> {
    const { rows } = await this.pool.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM api_files WHERE id = $1 AND tenant = $2`, [id, tenant]);
    return rows[0];
  }

  /**
   * The file's bytes in order, a bounded page at a time. Call `get` first: this trusts the id is the tenant's.
   * It stops at the file's size without asking for a page after the last, so a response ends with its last byte.
   */
  async *content(file: Pick<FileRow, "id" | "bytes">): AsyncGenerator<Buffer> {
    for (let after = 0, sent = 0; sent < file.bytes; ) {
      const { rows } = await this.pool.query<{ line: number; data: Buffer }>(CONTENT_PAGE_SQL, [file.id, after, CONTENT_PAGE_ROWS, CONTENT_PAGE_BYTES]);
      const last = rows.at(-1);
      if (last === undefined) return;
      const page = rows.length === 1 ? last.data : Buffer.concat(rows.map((r) => r.data));
      sent += page.length;
      after = last.line;
      yield page;
    }
  }

  /**
   * Deletes the file unless a batch that is still moving reads it. The file row is locked first, so a batch
   * being created over it (which takes FOR SHARE on it) either commits before this looks, or waits.
   */
  async delete(tenant: string, id: string): Promise<"deleted" | "not_found" | "in_use"> {
    return inTransaction(this.pool, async (client) => {
      const found = await client.query("SELECT 1 FROM api_files WHERE id = $1 AND tenant = $2 FOR UPDATE", [id, tenant]);
      if (found.rowCount === 0) return "not_found";
      const users = await client.query(`SELECT 1 FROM api_batches WHERE input_file_id = $1 AND status IN ${ACTIVE} LIMIT 1`, [id]);
      if ((users.rowCount ?? 0) > 0) return "in_use";
      await client.query("DELETE FROM api_files WHERE id = $1", [id]);
      return "deleted";
    });
  }

  /** The runnable lines after `afterLine`: at most `maxRows`, cut once `maxBytes` is reached. */
  async runnableLines(db: pg.ClientBase | pg.Pool, fileId: string, afterLine: number, maxRows: number, maxBytes: number): Promise<RunnableLine[]> {
    return (await db.query<RunnableLine>(RUNNABLE_PAGE_SQL, [fileId, afterLine, maxRows, maxBytes])).rows;
  }

  /** Request lines (ids and refusals, no bodies) after `afterLine`, in order. */
  async requestLines(db: pg.ClientBase | pg.Pool, fileId: string, afterLine: number, limit: number): Promise<RequestLine[]> {
    return (await db.query<RequestLine>(REQUEST_LINES_SQL, [fileId, afterLine, limit])).rows;
  }
}

/** OpenAI's file object. */
export function fileObject(f: FileRow): Record<string, unknown> {
  return {
    id: f.id,
    object: "file",
    bytes: f.bytes,
    created_at: Math.floor(f.created_at.getTime() / 1000),
    filename: f.filename,
    purpose: f.purpose,
    status: "processed",
    status_details: null,
  };
}
