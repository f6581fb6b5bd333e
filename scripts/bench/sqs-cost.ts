/**
 * SQS requests per job, by API call: a counting HTTP pass-through in front of the emulator (processes get its URL as
 * SQS_ENDPOINT). The AWS SDK v3 speaks SQS's JSON protocol, naming the call in `X-Amz-Target: AmazonSQS.<Op>`; a
 * query-protocol client names it in `Action=` instead, which is read from the URL when the header is absent (a
 * form body's Action is not parsed: such calls count as "unknown", and the bench says so if any appear).
 * Billing: SQS charges per request, and each 64 KiB chunk of a request's payload counts as one more (a batch of ten
 * 30 KiB messages bills 5); a call is billed here as ceil(max(request, response bytes) / 64 KiB), at least 1.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { passThrough } from "../fleet/pass-through.ts";

/**
 * USD per request: $0.40 per million for standard queues past the free tier (1 million requests a month), us-east-1,
 * as published at aws.amazon.com/sqs/pricing and quoted by the issue; written here 2026-12-03 (re-check the page
 * before quoting a bill). FIFO queues cost $0.50.
 */
export const SQS_USD_PER_REQUEST = 0.4 / 1_000_000;
const BILLING_CHUNK_BYTES = 64 * 1024;

export interface SqsCalls {
  /** Calls per operation, e.g. { ReceiveMessage: 120, DeleteMessageBatch: 100 }. */
  byKind: Record<string, number>;
  calls: number;
  /** Requests SQS would bill (64 KiB chunks). */
  billed: number;
}

export interface CountingProxy {
  url: string;
  /** Counts since the last reset. */
  counts(): SqsCalls;
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  let calls: SqsCalls = { byKind: {}, calls: 0, billed: 0 };
  // Counted on arrival, so a long poll still open (or cut by a stopping worker) counts as the request it is; chunks
  // past the first are added when the exchange ends, however it ends.
  const count = (op: string) => {
    calls.byKind[op] = (calls.byKind[op] ?? 0) + 1;
    calls.calls += 1;
    calls.billed += 1;
  };
  const bill = (bytes: number) => void (calls.billed += Math.max(0, Math.ceil(bytes / BILLING_CHUNK_BYTES) - 1));
  const server = createServer({ keepAlive: true, noDelay: true }, (req, res) => forward(req, res, to, count, bill));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts: () => ({ byKind: { ...calls.byKind }, calls: calls.calls, billed: calls.billed }),
    reset: () => void (calls = { byKind: {}, calls: 0, billed: 0 }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function operation(req: IncomingMessage): string {
  const target = req.headers["x-amz-target"];
  if (typeof target === "string") return target.slice(target.indexOf(".") + 1);
  return new URL(req.url ?? "/", "http://x").searchParams.get("Action") ?? "unknown";
}

function forward(req: IncomingMessage, res: ServerResponse, to: URL, count: (op: string) => void, bill: (bytes: number) => void): void {
  count(operation(req));
  passThrough(req, res, to, ({ requestBytes, responseBytes }) => bill(Math.max(requestBytes, responseBytes)));
}

/** Calls per job (total and by kind, 3 decimals) and billed requests per job. */
export function perJob(c: SqsCalls, jobs: number): { callsPerJob: number; byKind: Record<string, number>; billedPerJob: number } {
  const byKind = Object.fromEntries(Object.entries(c.byKind).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => [k, Math.round((n / jobs) * 1000) / 1000]));
  return { callsPerJob: c.calls / jobs, byKind, billedPerJob: c.billed / jobs };
}
