/**
 * Micro-benchmark of what logging costs per line and what the PII filter costs per text: `npx tsx
 * scripts/bench/log-cost.ts`. Lines go to a destination that drops them, so this is the CPU of building a line
 * (serializers, redaction, credential and PII scrub), not of the write.
 */
import { pino } from "pino";
import { createLogger } from "../../shared/logger.ts";
import { maskPii } from "../../shared/pii.ts";

const sink = { write: (_: string) => undefined };
const N = 200_000;

function time(label: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(i); // warm up
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const us = Number(process.hrtime.bigint() - t) / 1000 / n;
  process.stdout.write(`${label.padEnd(58)} ${us.toFixed(2).padStart(8)} µs\n`);
}

const ours = createLogger("debug", "bench", { format: "json", destination: sink });
const plain = pino({ level: "debug", name: "bench" }, sink);
const job = ours.child({ requestId: "01a207f0-b1d1-738e-8142-b25ec45c0677", tenant: "acme", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
const plainJob = plain.child({ requestId: "01a207f0-b1d1-738e-8142-b25ec45c0677", tenant: "acme", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
const infoJob = createLogger("info", "bench", { format: "json", destination: sink }).child({ requestId: "r", tenant: "acme", traceId: "t" });
const err = new Error("vllm chat: HTTP 400: This model's maximum context length is 8192 tokens; your prompt has 9000");

time("plain pino: job line { outcome }", N, () => plainJob.debug({ outcome: "succeeded" }, "job settled"));
time("ours: job line { outcome }", N, () => job.debug({ outcome: "succeeded" }, "job settled"));
time("ours: job line below the level (info logger, debug call)", N, () => infoJob.debug({ outcome: "succeeded" }, "job settled"));
time("plain pino: child({ requestId, tenant, traceId })", N / 4, () => plain.child({ requestId: "r", tenant: "acme", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" }));
time("ours: child({ requestId, tenant, traceId })", N / 4, () => ours.child({ requestId: "r", tenant: "acme", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" }));
time("plain pino: failure line { code, reason } + msg", N / 4, () => plainJob.warn({ status: "failed", code: "PROVIDER_BAD_REQUEST", reason: err.message }, "job failed"));
time("ours: failure line { code, reason } + msg (PII scan)", N / 4, () => job.warn({ status: "failed", code: "PROVIDER_BAD_REQUEST", reason: err.message }, "job failed"));
time("plain pino: { err } line (stack)", N / 10, () => plainJob.warn({ err }, "job handed back"));
time("ours: { err } line (stack scanned)", N / 10, () => job.warn({ err }, "job handed back"));

const texts: [string, string][] = [
  ["maskPii: 30-char message, nothing to find", "store reachable again; resumed"],
  ["maskPii: 100-char provider error", err.message],
  ["maskPii: 1 KiB prompt with an email and a card", `${"Please summarise the following notes. ".repeat(24)} mail a@b.com card 4111 1111 1111 1111`],
  ["maskPii: 4 KiB answer, digits throughout", "Item 12 costs 34.50; item 7 costs 8.25. ".repeat(100)],
];
for (const [label, text] of texts) time(`${label} (${text.length} chars)`, N / 10, () => maskPii(text));
