/**
 * The OpenAI Batch workflow through the whole Results API as `make api` runs it: real key auth, the batch routes
 * under /v1, the runner in the API process, a real worker and the vLLM simulator, driven by the official SDK.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { AuthenticationError, NotFoundError, toFile } from "openai";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { apiFixture } from "./support/api.ts";
import { chatLines, jsonl } from "./support/batch-api.ts";
import { stopEmulator, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

test("openai SDK against the API: upload, batch, completed, one line per custom_id; another tenant 404; a bad key 401", async () => {
  const api = await apiFixture({ batch: true });
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const w = testWorker(api.q, api.s.store, sim.url, { cache: api.cache });
  try {
    const { key } = await api.key("batch-tenant");
    const { key: otherKey } = await api.key("batch-other");
    const openai = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: key, maxRetries: 0 });
    const customIds = Array.from({ length: 8 }, (_, i) => `line-${i}`);
    const file = await openai.files.create({ file: await toFile(Buffer.from(chatLines(customIds)), "in.jsonl"), purpose: "batch" });
    const created = await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    let batch = created;
    await until(async () => (batch = await openai.batches.retrieve(created.id)).status === "completed", "the batch to complete", 120_000);
    assert.deepEqual(batch.request_counts, { total: 8, completed: 8, failed: 0 });
    const lines = await jsonl(await openai.files.content(batch.output_file_id!));
    assert.deepEqual(lines.map((l) => l.custom_id).sort(), [...customIds].sort());
    const other = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: otherKey, maxRetries: 0 });
    await assert.rejects(other.batches.retrieve(created.id), NotFoundError);
    await assert.rejects(other.files.retrieve(file.id), NotFoundError);
    const bad = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: "sk-fleet-not-a-key", maxRetries: 0 });
    await assert.rejects(bad.batches.list(), AuthenticationError);
  } finally {
    await w.stop();
    await sim.close();
    await api.close();
  }
});
