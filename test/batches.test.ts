/**
 * The OpenAI Batch workflow driven by the official `openai` SDK against the batch API, two batch runners, a real
 * worker, the vLLM simulator, Postgres and the SQS emulator.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { toFile, NotFoundError, BadRequestError } from "openai";
import type { Batch } from "openai/resources/batches";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { chatLines, jsonl, startBatchApi } from "./support/batch-api.ts";
import { queueFixture, stopEmulator, storeFixture, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

const ids = (n: number, prefix = "req") => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

test("files.create → batches.create → retrieve until completed → one output line per custom_id, counts growing", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  // One job at a time at real speed, so progress is seen between 0 and the total.
  const sim = await startVllmSimulator({ port: 0, timeScale: 1, earlyStopRate: 0 });
  const api = await startBatchApi(s, q);
  const w = testWorker(q, s.store, sim.url, { concurrency: 1 });
  try {
    const openai = api.client();
    const good = ids(20);
    // Line 21 asks for n=3: refused as a request (error file, 400), the rest run.
    const input = `${chatLines(good)}\n${chatLines(["three-choices"], { n: 3 })}`;
    const file = await openai.files.create({ file: await toFile(Buffer.from(input), "input.jsonl"), purpose: "batch" });
    assert.match(file.id, /^file-/);
    assert.deepEqual([file.object, file.bytes, file.filename, file.purpose, file.status], ["file", Buffer.byteLength(input), "input.jsonl", "batch", "processed"]);
    assert.equal(Buffer.from(await (await openai.files.content(file.id)).arrayBuffer()).toString(), input, "content is the upload byte for byte");

    const created = await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { run: "t1" } });
    assert.equal(created.status, "validating");
    assert.deepEqual(created.metadata, { run: "t1" });

    const seen: Batch[] = [];
    await until(async () => {
      const b = await openai.batches.retrieve(created.id);
      seen.push(b);
      return b.status === "completed";
    }, "batch completed", 120_000);
    const done = seen.at(-1)!;
    const running = seen.filter((b) => b.status === "in_progress");
    assert.ok(running.some((b) => b.request_counts!.completed > 0 && b.request_counts!.completed < 20), "counts seen between 0 and the total while running");
    const completedSeries = seen.map((b) => b.request_counts!.completed);
    assert.deepEqual(completedSeries, [...completedSeries].sort((a, b) => a - b), "completed never goes down");
    assert.deepEqual(done.request_counts, { total: 21, completed: 20, failed: 1 });
    for (const key of ["in_progress_at", "finalizing_at", "completed_at"] as const) assert.equal(typeof done[key], "number", key);
    assert.equal(done.usage!.output_tokens > 0, true);

    const output = await jsonl(await openai.files.content(done.output_file_id!));
    assert.deepEqual(output.map((l) => l.custom_id).sort(), [...good].sort(), "exactly one output line per custom_id");
    for (const l of output) {
      assert.equal(l.error, null);
      assert.equal(l.response.status_code, 200);
      assert.equal(l.response.body.object, "chat.completion");
      assert.equal(typeof l.response.body.choices[0].message.content, "string");
      assert.equal(l.response.body.usage.total_tokens, l.response.body.usage.prompt_tokens + l.response.body.usage.completion_tokens);
    }
    const errors = await jsonl(await openai.files.content(done.error_file_id!));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.custom_id, "three-choices");
    assert.equal(errors[0]!.response.status_code, 400);
    assert.equal(errors[0]!.response.body.error.param, "n");

    const listed = await openai.batches.list({ limit: 10 });
    assert.equal(listed.data[0]?.id, done.id);
    await assert.rejects(openai.files.delete(file.id).then(() => openai.files.retrieve(file.id)), NotFoundError, "the input can be deleted once the batch has ended");
    assert.equal((await openai.files.delete(done.output_file_id!)).deleted, true);
  } finally {
    await w.stop();
    await api.close();
    await sim.close();
    await s.close();
  }
});

test("cancel midway: cancelling → cancelled, partial output, lines never run are batch_cancelled and never run later", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 1, earlyStopRate: 0 });
  const api = await startBatchApi(s, q);
  const w = testWorker(q, s.store, sim.url, { concurrency: 1 });
  try {
    const openai = api.client();
    const all = ids(40);
    const file = await openai.files.create({ file: await toFile(Buffer.from(chatLines(all, { max_tokens: 16 })), "in.jsonl"), purpose: "batch" });
    const batch = await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await until(async () => (await openai.batches.retrieve(batch.id)).request_counts!.completed >= 2, "two requests done");
    await assert.rejects(openai.files.delete(file.id), (err: { status?: number }) => err.status === 409, "the input of a running batch cannot be deleted");
    const cancelling = await openai.batches.cancel(batch.id);
    assert.equal(cancelling.status, "cancelling");
    assert.equal(typeof cancelling.cancelling_at, "number");
    await until(async () => (await openai.batches.retrieve(batch.id)).status === "cancelled", "batch cancelled", 60_000);
    const done = await openai.batches.retrieve(batch.id);
    assert.equal(typeof done.cancelled_at, "number");
    assert.equal((await openai.batches.cancel(batch.id)).status, "cancelled", "cancelling again changes nothing");

    const output = await jsonl(await openai.files.content(done.output_file_id!));
    const errors = await jsonl(await openai.files.content(done.error_file_id!));
    assert.ok(output.length >= 2 && output.length < all.length, `partial output (${output.length})`);
    assert.deepEqual([...output, ...errors].map((l) => l.custom_id).sort(), [...all].sort(), "every custom_id once, in one file or the other");
    const cancelled = errors.filter((l) => l.error?.code === "batch_cancelled");
    assert.ok(cancelled.length > 0);
    for (const l of cancelled) assert.equal(l.response, null);
    assert.deepEqual(done.request_counts, { total: all.length, completed: output.length, failed: errors.length });

    // Once the queue has drained, no cancelled request ran after all.
    const cancelledIds = cancelled.map((l) => `batch-${batch.id.slice(6)}:${all.indexOf(l.custom_id) + 1}`);
    await until(async () => {
      const d = await q.queue.depth(q.queueUrl);
      return d.visible + d.inFlight + d.delayed === 0;
    }, "queue drained", 60_000);
    const records = await s.store.getMany(cancelledIds);
    for (const r of records) assert.equal(r.error?.code, "batch_cancelled", `${r.id} stays cancelled`);
  } finally {
    await w.stop();
    await api.close();
    await sim.close();
    await s.close();
  }
});

test("malformed lines, duplicate custom_ids and a wrong url fail the batch at validating, naming each line", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const ended: { webhookUrl: string | null; batch: Record<string, unknown> }[] = [];
  const api = await startBatchApi(s, q, { runner: { onEnded: async (_client, e) => void ended.push(e) } });
  try {
    const openai = api.client();
    const ok = (id: string) => chatLines([id]).trimEnd();
    const lines = [
      ok("a"), // 1
      "{not json", // 2
      "", // 3: blank, ignored
      ok("a"), // 4: duplicates line 1
      JSON.stringify({ custom_id: "g", method: "GET", url: "/v1/chat/completions", body: {} }), // 5
      JSON.stringify({ custom_id: "c", method: "POST", url: "/v1/completions", body: { prompt: "hi" } }), // 6: not this batch's endpoint
      JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: {} }), // 7: no custom_id
      ok("b"), // 8
    ];
    const file = await openai.files.create({ file: await toFile(Buffer.from(lines.join("\n")), "bad.jsonl"), purpose: "batch" });
    // webhook_url is ours, not OpenAI's: the SDK sends body fields it does not know as they are.
    const params = { input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", webhook_url: "https://hooks.example/batch" } as const;
    const batch = await openai.batches.create(params);
    await until(async () => (await openai.batches.retrieve(batch.id)).status === "failed", "batch failed");
    const failed = await openai.batches.retrieve(batch.id);
    assert.equal(typeof failed.failed_at, "number");
    const byLine = failed.errors!.data!.map((e) => [e.line, e.code]);
    assert.deepEqual(byLine, [
      [2, "invalid_json_line"],
      [4, "duplicate_custom_id"],
      [5, "invalid_value"],
      [6, "mismatched_endpoint"],
      [7, "missing_required_parameter"],
    ]);
    assert.match(failed.errors!.data![1]!.message!, /same as on line 1/);
    assert.equal(failed.output_file_id, null);
    assert.deepEqual(failed.request_counts, { total: 0, completed: 0, failed: 0 });
    assert.equal((await s.pool.query("SELECT count(*)::int AS n FROM jobs")).rows[0].n, 0, "nothing ran");
    assert.deepEqual(ended.map((e) => [e.webhookUrl, e.batch.id, e.batch.status]), [["https://hooks.example/batch", batch.id, "failed"]], "the end is announced once, with the webhook");
  } finally {
    await api.close();
    await s.close();
  }
});

test("a batch past its expiry ends `expired`: lines not run are batch_expired", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const api = await startBatchApi(s, q); // no worker: nothing runs
  try {
    const openai = api.client();
    const all = ids(12);
    const file = await openai.files.create({ file: await toFile(Buffer.from(chatLines(all)), "in.jsonl"), purpose: "batch" });
    const batch = await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    assert.equal(batch.expires_at! - batch.created_at, 24 * 3600);
    await until(async () => (await api.pool.query("SELECT enqueued_through FROM api_batches WHERE id = $1", [batch.id])).rows[0].enqueued_through === 12, "all lines sent");
    await api.pool.query("UPDATE api_batches SET expires_at = now() WHERE id = $1", [batch.id]);
    await until(async () => (await openai.batches.retrieve(batch.id)).status === "expired", "batch expired");
    const done = await openai.batches.retrieve(batch.id);
    assert.equal(typeof done.expired_at, "number");
    assert.equal(done.output_file_id, null);
    const errors = await jsonl(await openai.files.content(done.error_file_id!));
    assert.deepEqual(errors.map((l) => l.custom_id).sort(), [...all].sort());
    for (const l of errors) assert.deepEqual([l.response, l.error.code], [null, "batch_expired"]);
    assert.deepEqual(done.request_counts, { total: 12, completed: 0, failed: 12 });
  } finally {
    await api.close();
    await s.close();
  }
});

test("another tenant gets 404 for files and batches, and does not list them", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const api = await startBatchApi(s, q);
  try {
    const acme = api.client("sk-acme");
    const globex = api.client("sk-globex");
    const file = await acme.files.create({ file: await toFile(Buffer.from(chatLines(["x"])), "in.jsonl"), purpose: "batch" });
    const batch = await acme.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await assert.rejects(globex.files.retrieve(file.id), NotFoundError);
    await assert.rejects(globex.files.content(file.id), NotFoundError);
    await assert.rejects(globex.files.delete(file.id), NotFoundError);
    await assert.rejects(globex.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }), NotFoundError);
    await assert.rejects(globex.batches.retrieve(batch.id), NotFoundError);
    await assert.rejects(globex.batches.cancel(batch.id), NotFoundError);
    assert.deepEqual((await globex.batches.list()).data, []);
    assert.equal((await acme.batches.retrieve(batch.id)).id, batch.id, "the owner still sees it");
  } finally {
    await api.close();
    await s.close();
  }
});

test("upload limits: too many requests, too large, a line too long; bad create parameters in OpenAI's error shape", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const api = await startBatchApi(s, q, { limits: { maxRequests: 5, maxFileBytes: 2_000, maxLineBytes: 400 }, runners: 0 });
  try {
    const openai = api.client();
    const upload = (text: string) => openai.files.create({ file: new File([text], "in.jsonl"), purpose: "batch" });
    await assert.rejects(upload(chatLines(ids(6))), (e: BadRequestError) => e.status === 400 && e.code === "too_many_requests");
    await assert.rejects(upload(chatLines(ids(5)) + "\n".repeat(1_500)), (e: { status?: number; code?: string }) => e.status === 413 && e.code === "file_too_large");
    await assert.rejects(upload(chatLines(["long"], { messages: [{ role: "user", content: "x".repeat(500) }] })), (e: BadRequestError) => e.code === "line_too_long");
    await assert.rejects(openai.files.create({ file: new File(["{}"], "x.jsonl"), purpose: "fine-tune" }), (e: BadRequestError) => e.param === "purpose");
    assert.equal((await s.pool.query("SELECT count(*)::int AS n FROM api_files")).rows[0].n, 0, "a refused upload leaves nothing behind");
    const file = await upload(chatLines(ids(5)));
    await assert.rejects(
      openai.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" }),
      (e: BadRequestError) => e.status === 400 && e.param === "endpoint" && e.type === "invalid_request_error",
    );
    await assert.rejects(openai.batches.retrieve("batch_nope"), (e: NotFoundError) => e.status === 404 && /No such Batch/.test(e.message));
  } finally {
    await api.close();
    await s.close();
  }
});
