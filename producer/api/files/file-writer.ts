/**
 * Writes a file's lines inside the caller's transaction, in bounded chunks: memory holds at most FLUSH_BYTES of
 * lines (plus the one being added), whatever the file's size. The file row is inserted first (api_file_lines refers to
 * it) and its size set on close; nobody sees either before the caller commits.
 */
import type pg from "pg";
import type { LineProblem } from "../batches/openai-body.ts";
import { FILE_COLUMNS, type FileRow } from "./file-store.ts";

export interface LineRow {
  line: number;
  data: Buffer;
  customId?: string | null;
  url?: string | null;
  lineError?: LineProblem;
  requestError?: LineProblem;
}

export interface FileHeader {
  id: string;
  tenant: string;
  purpose: "batch" | "batch_output";
  filename: string;
}

const FLUSH_ROWS = 500;
const FLUSH_BYTES = 1024 * 1024;
const PARAMS_PER_ROW = 6;

export class FileWriter {
  private rows: LineRow[] = [];
  private rowBytes = 0;
  bytes = 0;
  lines = 0;
  requests = 0;

  private constructor(
    private readonly client: pg.ClientBase,
    readonly header: FileHeader,
  ) {}

  static async open(client: pg.ClientBase, header: FileHeader): Promise<FileWriter> {
    await client.query("INSERT INTO api_files (id, tenant, purpose, filename, bytes, lines, requests) VALUES ($1, $2, $3, $4, 0, 0, 0)", [
      header.id,
      header.tenant,
      header.purpose,
      header.filename,
    ]);
    return new FileWriter(client, header);
  }

  /** Adds the next line (a request unless told it is blank); writes a chunk when one is full. */
  async append(row: LineRow, isRequest = true): Promise<void> {
    this.rows.push(row);
    this.rowBytes += row.data.length;
    this.bytes += row.data.length;
    this.lines = row.line;
    if (isRequest) this.requests++;
    if (this.rows.length >= FLUSH_ROWS || this.rowBytes >= FLUSH_BYTES) await this.flush();
  }

  /** Writes what is left and the file's totals; `update` changes header fields only known at the end (purpose). */
  async close(update: Partial<Pick<FileHeader, "purpose" | "filename">> = {}): Promise<FileRow> {
    await this.flush();
    const header = { ...this.header, ...update };
    const { rows } = await this.client.query<FileRow>(
      `UPDATE api_files SET purpose = $2, filename = $3, bytes = $4, lines = $5, requests = $6 WHERE id = $1 RETURNING ${FILE_COLUMNS}`,
      [header.id, header.purpose, header.filename, this.bytes, this.lines, this.requests],
    );
    return rows[0] as FileRow;
  }

  private async flush(): Promise<void> {
    if (this.rows.length === 0) return;
    const values: unknown[] = [this.header.id];
    const tuples = this.rows.map((r, i) => {
      const p = 2 + i * PARAMS_PER_ROW;
      // Buffers go to Postgres as binary parameters: no hex or escape copy of the bytes.
      values.push(r.line, r.data, r.customId ?? null, r.url ?? null, json(r.lineError), json(r.requestError));
      return `($1, $${p}, $${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::jsonb, $${p + 5}::jsonb)`;
    });
    this.rows = [];
    this.rowBytes = 0;
    await this.client.query(`INSERT INTO api_file_lines (file_id, line, data, custom_id, url, line_error, request_error) VALUES ${tuples.join(", ")}`, values);
  }
}

/** jsonb refuses U+0000 (a key or value quoted from the line): it is written as the six characters `\u0000`. */
function json(v: LineProblem | undefined): string | null {
  return v === undefined ? null : JSON.stringify(v, (_k, x: unknown) => (typeof x === "string" ? x.replace(/\u0000/g, "\\u0000") : x));
}
