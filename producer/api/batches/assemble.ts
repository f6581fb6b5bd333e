/**
 * Finalizing: the output and error files, built from the job records in input order, a page of lines at a time,
 * inside the runner's transaction — the files and the batch's end state commit together, or not at all. Nothing
 * waits on a request still running: whatever has no terminal record now is reported as never run.
 */
import type pg from "pg";
import type { JobStore } from "../../../shared/store/jobs.ts";
import { FileWriter } from "../files/file-writer.ts";
import type { FileStore } from "../files/file-store.ts";
import { batchJobId, newFileId } from "./batch-job.ts";
import type { BatchRow, BatchUsage } from "./batch-store.ts";
import { outputLine, type UnrunCode } from "./output-line.ts";

/** Lines per page: bounds the job records (with their answers) held at once. */
const PAGE_LINES = 200;

export interface Assembled {
  outputFileId: string | null;
  errorFileId: string | null;
  completed: number;
  failed: number;
  usage: BatchUsage;
}

export async function assembleFiles(
  client: pg.ClientBase,
  deps: { files: FileStore; jobs: Pick<JobStore, "getForTenant"> },
  b: BatchRow,
  unrun: UnrunCode,
): Promise<Assembled> {
  const writers: { output?: FileWriter; error?: FileWriter } = {};
  const usage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
  for (let after = 0; ; ) {
    const lines = await deps.files.requestLines(client, b.input_file_id, after, PAGE_LINES);
    const last = lines.at(-1);
    if (last === undefined) break;
    const ids = lines.filter((l) => l.request_error === null).map((l) => batchJobId(b.id, l.line));
    const records = new Map((await deps.jobs.getForTenant(b.tenant, ids)).map((r) => [r.id, r]));
    for (const l of lines) {
      const record = records.get(batchJobId(b.id, l.line));
      const out = outputLine({ batchId: b.id, endpoint: b.endpoint, line: l.line, customId: l.custom_id, requestError: l.request_error, record, unrun });
      const writer = (writers[out.file] ??= await FileWriter.open(client, {
        id: newFileId(),
        tenant: b.tenant,
        purpose: "batch_output",
        filename: `${b.id}_${out.file}.jsonl`,
      }));
      await writer.append({ line: writer.lines + 1, data: Buffer.from(`${out.text}\n`) });
      usage.input_tokens += out.promptTokens;
      usage.output_tokens += out.completionTokens;
    }
    after = last.line;
  }
  usage.total_tokens = usage.input_tokens + usage.output_tokens;
  const output = await writers.output?.close();
  const error = await writers.error?.close();
  return { outputFileId: output?.id ?? null, errorFileId: error?.id ?? null, completed: output?.lines ?? 0, failed: error?.lines ?? 0, usage };
}
