/**
 * A job carrying U+0000 that reaches a worker anyway (a producer that skipped the contract) is recorded `failed`
 * with JOB_INVALID against its id, instead of failing every write that would carry it into Postgres.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { queueFixture, stopEmulator, storeFixture, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

test("a worker records a NUL-carrying job failed (JOB_INVALID, field named) and still runs the clean one", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const created_at = new Date().toISOString();
  // JSON.stringify writes the NUL as the six characters \u0000: the body itself is plain ASCII, as SQS needs.
  // (No emoji here: the emulator refuses characters above U+FFFF, real SQS does not; the contract test covers them.)
  const sent = await q.queue.sendBatch(q.queueUrl, [
    { id: "nul", body: JSON.stringify({ v: 1, id: "nul-job", tenant: "t", created_at, messages: [{ role: "user", content: "a\u0000b" }] }) },
    { id: "clean", body: JSON.stringify({ v: 1, id: "clean-job", tenant: "t", created_at, prompt: "tab\there \u0001 \u200f", params: { max_tokens: 4 } }) },
  ]);
  assert.deepEqual(sent.failed, []);
  const w = testWorker(q, s.store, sim.url);
  try {
    const ids = ["nul-job", "clean-job"];
    await until(async () => (await s.store.getMany(ids)).filter((r) => !["queued", "running"].includes(r.status)).length === 2, "both jobs recorded");
    const nul = (await s.store.get("nul-job"))!;
    assert.equal(nul.status, "failed");
    assert.equal(nul.error?.code, "JOB_INVALID");
    assert.match(nul.error!.message, /messages\.0\.content: must not contain U\+0000/);
    assert.equal((await s.store.get("clean-job"))!.status, "succeeded");
  } finally {
    await w.stop();
    await sim.close();
    await s.close();
  }
});
