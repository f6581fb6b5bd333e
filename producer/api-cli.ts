/**
 * CLI commands that talk to the Results API over HTTP (FLEET_API_URL, FLEET_API_KEY), for pipelines that hold a key
 * rather than database credentials:
 *   batch submit FILE.jsonl [--endpoint /v1/chat/completions] [--wait]   upload, create; --wait shows progress
 *   batch status ID            the batch object as JSON
 *   batch download ID --out F  the output file (and F.errors.jsonl when there is an error file)
 *   batch cancel ID
 *   jobs get ID [--wait N]     the job as the API shows it; --wait long-polls up to N seconds
 * Exit codes: 0 ok; 1 the batch or job did not end well (failed, expired, cancelled; a job not succeeded);
 * 2 usage or an API error (its OpenAI-shaped message is printed).
 */
import { createWriteStream, openAsBlob } from "node:fs";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { SingleBar, Presets } from "cli-progress";

export interface ApiClientConfig {
  url: string;
  key: string;
}

export class ApiCallError extends Error {}
export class ApiUsageError extends Error {}

interface Batch {
  id: string;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts: { total: number; completed: number; failed: number };
}

export const USAGE = `usage (FLEET_API_URL, FLEET_API_KEY):
  batch submit FILE.jsonl [--endpoint /v1/chat/completions|/v1/completions] [--wait]
  batch status ID
  batch download ID --out FILE
  batch cancel ID
  jobs get ID [--wait SECONDS]`;

function seconds(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new ApiUsageError("--wait must be a whole number of seconds");
  return n;
}

const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);

export async function runApiCommand(c: ApiClientConfig, argv: string[]): Promise<number> {
  const api = new ApiClient(c);
  const [group, command, target] = argv;
  if (group === "jobs" && command === "get" && target !== undefined) {
    const { values } = parseArgs({ args: argv.slice(3), options: { wait: { type: "string" } } });
    const wait = values.wait === undefined ? "" : `?wait=${seconds(values.wait)}`;
    const job = await api.json<{ status: string }>("GET", `/v1/jobs/${encodeURIComponent(target)}${wait}`);
    process.stdout.write(`${JSON.stringify(job)}\n`);
    return job.status === "succeeded" ? 0 : 1;
  }
  if (group !== "batch" || target === undefined) throw new ApiUsageError(USAGE);
  const { values } = parseArgs({ args: argv.slice(3), options: { wait: { type: "boolean" }, out: { type: "string" }, endpoint: { type: "string", default: "/v1/chat/completions" } } });
  switch (command) {
    case "submit": {
      const file = await api.upload(target);
      const batch = await api.json<Batch>("POST", "/v1/batches", { input_file_id: file.id, endpoint: values.endpoint, completion_window: "24h" });
      process.stderr.write(`batch ${batch.id} (${batch.status}), input file ${file.id}\n`);
      if (!values.wait) {
        process.stdout.write(`${JSON.stringify(batch)}\n`);
        return 0;
      }
      const last = await follow(api, batch.id);
      process.stdout.write(`${JSON.stringify(last)}\n`);
      return last.status === "completed" ? 0 : 1;
    }
    case "status": {
      const batch = await api.json<Batch>("GET", `/v1/batches/${encodeURIComponent(target)}`);
      process.stdout.write(`${JSON.stringify(batch)}\n`);
      return 0;
    }
    case "cancel": {
      const batch = await api.json<Batch>("POST", `/v1/batches/${encodeURIComponent(target)}/cancel`);
      process.stdout.write(`${JSON.stringify(batch)}\n`);
      return 0;
    }
    case "download": {
      if (values.out === undefined) throw new ApiUsageError("batch download needs --out FILE");
      const batch = await api.json<Batch>("GET", `/v1/batches/${encodeURIComponent(target)}`);
      if (batch.output_file_id === null && batch.error_file_id === null) throw new ApiCallError(`batch ${batch.id} has no output yet (${batch.status})`);
      if (batch.output_file_id !== null) await api.download(batch.output_file_id, values.out);
      if (batch.error_file_id !== null) await api.download(batch.error_file_id, `${values.out}.errors.jsonl`);
      process.stderr.write(`wrote ${[batch.output_file_id && values.out, batch.error_file_id && `${values.out}.errors.jsonl`].filter(Boolean).join(" and ")}\n`);
      return 0;
    }
    default:
      throw new ApiUsageError(`unknown batch command ${command ?? ""}`);
  }
}

/** Polls the batch every 2 s until it ends, with a progress bar (counts, ETA) on stderr. */
async function follow(api: ApiClient, id: string): Promise<Batch> {
  const bar = new SingleBar({ format: "batch |{bar}| {value}/{total} done ({failed} failed) | {status} | ETA {eta_formatted}", hideCursor: true, stream: process.stderr }, Presets.shades_classic);
  let batch = await api.json<Batch>("GET", `/v1/batches/${id}`);
  bar.start(Math.max(1, batch.request_counts.total), 0, { failed: 0, status: batch.status });
  while (!TERMINAL.has(batch.status)) {
    await new Promise((r) => setTimeout(r, 2_000));
    batch = await api.json<Batch>("GET", `/v1/batches/${id}`);
    const { total, completed, failed } = batch.request_counts;
    bar.setTotal(Math.max(1, total));
    bar.update(completed + failed, { failed, status: batch.status });
  }
  bar.stop();
  return batch;
}

class ApiClient {
  constructor(private readonly c: ApiClientConfig) {}

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.call(method, path, body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    return (await res.json()) as T;
  }

  /** multipart/form-data streamed from disk (a file-backed Blob), purpose=batch. */
  async upload(path: string): Promise<{ id: string }> {
    const form = new FormData();
    form.set("purpose", "batch");
    form.set("file", await openAsBlob(path), basename(path));
    const res = await this.call("POST", "/v1/files", { body: form });
    return (await res.json()) as { id: string };
  }

  async download(fileId: string, to: string): Promise<void> {
    const res = await this.call("GET", `/v1/files/${encodeURIComponent(fileId)}/content`, {});
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(to));
  }

  private async call(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> }): Promise<Response> {
    const res = await fetch(`${this.c.url.replace(/\/+$/, "")}${path}`, { method, body: init.body, headers: { authorization: `Bearer ${this.c.key}`, ...init.headers } });
    if (res.ok) return res;
    const text = await res.text();
    let message = text.slice(0, 500);
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON: the text itself
    }
    throw new ApiCallError(`${method} ${path}: ${res.status} ${message}`);
  }
}
