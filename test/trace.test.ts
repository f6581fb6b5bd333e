/**
 * The correlation id across real services: producer → SQS `traceparent` attribute → worker → provider request
 * header (the vLLM simulator's request log) → the job's record; the job's log lines carry requestId, tenant and
 * traceId; with LOG_BODIES the prompt and answer are logged at debug level, masked.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Producer } from "../producer/producer.ts";
import { startVllmSimulator, type RunningSimulator } from "../scripts/simulators/vllm/server.ts";
import { buildJob, encodeJob, type JobInput } from "../shared/contract.ts";
import { createLogger } from "../shared/logger.ts";
import { parseTraceparent, TRACEPARENT } from "../shared/trace.ts";
import { queueFixture, stopEmulator, storeFixture, until, type QueueFixture, type StoreFixture } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

const chat = (content: string, extra: Partial<JobInput> = {}): JobInput => ({ tenant: "acme", messages: [{ role: "user", content }], params: { max_tokens: 8 }, ...extra });

/** Everything the worker logs, parsed. */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = createLogger("debug", "worker", { format: "json", destination: { write: (s: string) => void (raw.push(s), lines.push(JSON.parse(s) as Record<string, unknown>)) } });
  return { log, lines, text: () => raw.join("") };
}

async function finished(s: StoreFixture, ids: string[]): Promise<void> {
  await until(async () => (await s.store.getMany(ids)).every((r) => r.status === "succeeded") && (await s.store.getMany(ids)).length === ids.length, "jobs succeeded");
}

async function withServices(fn: (q: QueueFixture, s: StoreFixture, sim: RunningSimulator) => Promise<void>): Promise<void> {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, profile: "instant", seed: 5, requestLog: 100 });
  try {
    await fn(q, s, sim);
  } finally {
    await sim.close();
    q.queue.close();
    await s.close();
  }
}

test("traceparent travels producer → SQS attribute → worker → provider header → record, and names every job line", async () => {
  await withServices(async (q, s, sim) => {
    const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const producer = new Producer({ queue: q.queue, queueUrl: q.queueUrl });
    const given = await producer.submitMany([chat("one"), chat("two")], { traceparent: caller });
    const own = await producer.submitMany([chat("three")]);
    // Sent without the producer: no attribute, and an invalid one. Each gets a fresh trace, and still runs.
    const bare = [buildJob(chat("four")), buildJob(chat("five"))];
    const sent = await q.queue.sendBatch(q.queueUrl, [
      { id: "0", body: encodeJob(bare[0]!) },
      { id: "1", body: encodeJob(bare[1]!), attributes: { [TRACEPARENT]: "not-a-traceparent" } },
    ]);
    assert.deepEqual(sent.failed, []);

    // The attribute is on the queue: peek one (visibility 0 leaves it for the worker).
    const peeked = await q.queue.receive(q.queueUrl, { maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 0 });
    const onQueue = peeked.find((m) => m.body.includes(given.ids[0]!));
    assert.ok(onQueue, "the job is on the queue");
    const attribute = parseTraceparent(onQueue.attributes?.[TRACEPARENT]);
    assert.equal(attribute?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.notEqual(attribute?.spanId, "00f067aa0ba902b7", "the producer sends its own span");

    const capture = captureLog();
    const w = testWorker(q, s.store, sim.url, { log: capture.log });
    const ids = [...given.ids, ...own.ids, ...bare.map((j) => j.id)];
    try {
      await finished(s, ids);
    } finally {
      await w.stop();
    }

    const headers = new Map(sim.requestLog().entries.map((e) => [e.requestId, parseTraceparent(e.traceparent)]));
    const records = new Map((await s.store.getMany(ids)).map((r) => [r.id, r]));
    for (const id of ids) {
      const header = headers.get(id);
      assert.ok(header, `${id}: the provider got a valid traceparent`);
      assert.equal(records.get(id)?.traceId, header.traceId, `${id}: the record keeps the header's trace id`);
      const lines = capture.lines.filter((l) => l.requestId === id);
      assert.ok(lines.some((l) => l.msg === "job settled"), `${id}: its settled line`);
      for (const l of lines) assert.deepEqual([l.tenant, l.traceId], ["acme", header.traceId], `${id}: ${JSON.stringify(l)}`);
    }
    for (const id of given.ids) assert.equal(headers.get(id)?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736", "the caller's trace");
    const fresh = [own.ids[0]!, ...bare.map((j) => j.id)].map((id) => headers.get(id)!.traceId);
    assert.equal(new Set([...fresh, "4bf92f3577b34da6a3ce929d0e0e4736"]).size, 4, "each job without a caller's trace has its own");
  });
});

/** One job with PII in its prompt and metadata through a worker with LOG_BODIES on or off: what it logged. */
async function logsOfOneJob(logBodies: boolean, prompt: string): Promise<{ id: string; lines: Record<string, unknown>[]; text: string }> {
  let out: { id: string; lines: Record<string, unknown>[]; text: string } | undefined;
  await withServices(async (q, s, sim) => {
    const capture = captureLog();
    const { ids } = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany([chat(prompt, { metadata: { contact: "eve@example.com" } })]);
    const w = testWorker(q, s.store, sim.url, { log: capture.log, logBodies });
    try {
      await finished(s, ids);
    } finally {
      await w.stop();
    }
    out = { id: ids[0]!, lines: capture.lines, text: capture.text() };
  });
  return out!;
}

test("LOG_BODIES logs prompt and answer at debug, masked; without it no body and no PII reaches the log", async () => {
  const prompt = "I am dave@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958";
  const pii = /dave@example\.com|4111 1111 1111 1111|7946 0958|eve@example\.com/;
  const bodies = (r: { id: string; lines: Record<string, unknown>[] }) => r.lines.filter((l) => l.requestId === r.id && (l.msg === "job prompt" || l.msg === "job answer"));

  const on = await logsOfOneJob(true, prompt);
  assert.doesNotMatch(on.text, pii);
  const lines = bodies(on);
  assert.deepEqual(lines.map((l) => [l.msg, l.level]), [["job prompt", 20], ["job answer", 20]]);
  assert.match(JSON.stringify(lines[0]!.prompt), /I am \[email\], card \[card\], call \[phone\]/);
  assert.equal(typeof lines[1]!.answer, "string");

  const off = await logsOfOneJob(false, prompt);
  assert.doesNotMatch(off.text, pii);
  assert.deepEqual(bodies(off), []);
  assert.ok(off.lines.some((l) => l.requestId === off.id && l.msg === "job settled"), "the job was logged, without its body");
});
