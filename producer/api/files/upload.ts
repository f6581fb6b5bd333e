/**
 * POST /v1/files: the multipart upload streamed straight into Postgres. Each line is checked (request-line.ts)
 * and written as it arrives, in bounded chunks, inside one transaction: memory stays at one chunk whatever the
 * file's size, and a refused or broken upload leaves nothing behind. `purpose` may come before or after the file
 * part (the openai SDK sends it after), so the file is committed only once the whole form has been read.
 */
import type { FastifyRequest } from "fastify";
import type pg from "pg";
import { inTransaction } from "../../../shared/store/transaction.ts";
import { newFileId } from "../batches/batch-job.ts";
import { invalid } from "../batches/openai-error.ts";
import { checkLine } from "../batches/request-line.ts";
import type { FileRow } from "./file-store.ts";
import { FileWriter } from "./file-writer.ts";
import { LineTooLongError, splitLines } from "./line-splitter.ts";

export interface UploadLimits {
  /** Bytes per file. OpenAI: 200 MB. */
  maxFileBytes: number;
  /** Requests (non-blank lines) per file. OpenAI: 50,000. */
  maxRequests: number;
  /** Physical lines per file, blank ones included, so a file of newlines cannot grow the table without bound. */
  maxLines: number;
  /** Bytes per line: a job is at most 256 KiB, so a longer line could never run. */
  maxLineBytes: number;
}

export const OPENAI_UPLOAD_LIMITS: UploadLimits = {
  maxFileBytes: 200 * 1024 * 1024,
  maxRequests: 50_000,
  maxLines: 100_000,
  maxLineBytes: 1024 * 1024,
};

export async function receiveUpload(request: FastifyRequest, pool: pg.Pool, tenant: string, limits: UploadLimits): Promise<FileRow> {
  if (!request.isMultipart()) throw invalid(400, "invalid_request", "expected multipart/form-data with a `file` and `purpose`", null);
  return inTransaction(pool, async (client) => {
    const fields = new Map<string, string>();
    let writer: FileWriter | undefined;
    const parts = request.parts({ limits: { fileSize: limits.maxFileBytes, files: 1, fields: 8, fieldSize: 4096, parts: 10 } });
    for await (const part of parts) {
      if (part.type === "field") {
        fields.set(part.fieldname, String(part.value));
        // Sent before the file (not the SDK's order), a wrong purpose is refused before any of the file is stored.
        if (writer === undefined) checkPurpose(fields.get("purpose") ?? "batch");
        continue;
      }
      if (part.fieldname !== "file") throw invalid(400, "invalid_request", `unexpected file field '${part.fieldname}'`, part.fieldname);
      writer = await FileWriter.open(client, { id: newFileId(), tenant, purpose: "batch", filename: part.filename || "input.jsonl" });
      await ingest(part.file, writer, tenant, limits);
      // busboy stops at fileSize and marks the stream truncated rather than failing it.
      if (part.file.truncated) throw invalid(413, "file_too_large", `the file is larger than ${limits.maxFileBytes} bytes`, "file");
    }
    const purpose = fields.get("purpose");
    if (purpose === undefined) throw invalid(400, "missing_required_parameter", "'purpose' is required", "purpose");
    checkPurpose(purpose);
    if (writer === undefined) throw invalid(400, "missing_required_parameter", "'file' is required", "file");
    return writer.close();
  });
}

function checkPurpose(purpose: string): void {
  if (purpose !== "batch") throw invalid(400, "invalid_value", `purpose '${purpose}' is not supported here; use 'batch'`, "purpose");
}

async function ingest(stream: AsyncIterable<Buffer>, writer: FileWriter, tenant: string, limits: UploadLimits): Promise<void> {
  let line = 0;
  try {
    for await (const data of splitLines(stream, limits.maxLineBytes)) {
      line++;
      if (line > limits.maxLines) throw invalid(400, "too_many_lines", `the file has more than ${limits.maxLines} lines`, "file");
      const check = checkLine(data, line, tenant);
      if (check.kind === "blank") {
        await writer.append({ line, data }, false);
        continue;
      }
      if (writer.requests >= limits.maxRequests) {
        throw invalid(400, "too_many_requests", `the file has more than ${limits.maxRequests} requests (line ${line})`, "file");
      }
      await writer.append({ line, data, customId: check.customId, url: check.url, lineError: check.lineError, requestError: check.requestError });
    }
  } catch (err) {
    if (err instanceof LineTooLongError) throw invalid(400, err.code, err.message, "file");
    throw err;
  }
}
