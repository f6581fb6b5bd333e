/**
 * Job webhooks end to end: a node:http receiver checks every signature, answers 500 first and is retried; a
 * webhook registered before an API restart is still delivered for a job that ended while the API was down.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SIGNATURE_HEADER, signWebhook, verifyWebhook } from "../producer/api/webhook-signature.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { apiFixture, type ApiFixture } from "./support/api.ts";
import { stopEmulator, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await stopEmulator();
});

interface Received {
  body: string;
  signature: string | undefined;
  event: string | undefined;
}

/** Answers the statuses in `answers` in turn (then 200), recording every request. */
async function receiver(answers: number[]): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    received.push({ body: Buffer.concat(chunks).toString("utf8"), signature: req.headers[SIGNATURE_HEADER] as string | undefined, event: req.headers["x-fleet-event"] as string | undefined });
    res.statusCode = answers.shift() ?? 200;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/fleet`, received };
}

async function fixture(): Promise<ApiFixture> {
  const f = await apiFixture();
  closers.push(() => f.close());
  return f;
}

async function startWorker(f: ApiFixture): Promise<void> {
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05 });
  const w = testWorker(f.q, f.s.store, sim.url, { cache: f.cache });
  closers.push(async () => {
    await w.stop();
    await sim.close();
  });
}

test("signatures: a valid one verifies; a changed body, another secret or an old timestamp does not", () => {
  const body = '{"a":1}';
  const now = 1_800_000_000;
  const header = signWebhook("whsec_x", body, now);
  assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/);
  assert.ok(verifyWebhook("whsec_x", header, body, { nowSeconds: now + 10 }));
  assert.ok(!verifyWebhook("whsec_x", header, '{"a":2}', { nowSeconds: now }));
  assert.ok(!verifyWebhook("whsec_y", header, body, { nowSeconds: now }));
  assert.ok(!verifyWebhook("whsec_x", header, body, { nowSeconds: now + 301 }));
  assert.ok(!verifyWebhook("whsec_x", undefined, body));
});

test("webhook: the finished job is POSTed, signed with the tenant's secret; a 500 is retried until a 2xx", async () => {
  const f = await fixture();
  const hook = await receiver([500]);
  const { key, webhookSecret } = await f.key("hooked");
  assert.ok(webhookSecret?.startsWith("whsec_"), "the tenant's first key comes with its signing secret");
  assert.equal((await f.key("hooked")).webhookSecret, undefined, "shown once: a second key does not repeat it");
  const { json } = await f.request("/v1/jobs", { key, body: { prompt: "call me back", webhook_url: hook.url } });
  await startWorker(f);
  await until(() => hook.received.length >= 2, "the delivery and its retry", 30_000);
  for (const r of hook.received) {
    assert.ok(verifyWebhook(webhookSecret!, r.signature, r.body), `signature ${r.signature} verifies`);
    assert.equal(r.event, "job.completed");
  }
  const [first, second] = hook.received.map((r) => JSON.parse(r.body));
  assert.equal(first.id, second.id, "a retry is the same event (receivers dedupe on its id)");
  assert.equal(second.type, "job.completed");
  assert.equal(second.data.id, json.id);
  assert.equal(second.data.status, "succeeded");
  assert.ok(second.data.output.length > 0);
  await until(async () => (await deliveryRow(f, json.id))?.status === "delivered", "the delivery to be recorded delivered");
  const row = await deliveryRow(f, json.id);
  assert.equal(row?.attempts, 2);
  assert.equal(row?.last_status, 200);
  assert.equal(hook.received.length, 2, "nothing sent after the 2xx");
});

test("webhook: registered before an API restart, delivered for a job that ended while the API was down", async () => {
  const f = await fixture();
  const hook = await receiver([]);
  const { key, webhookSecret } = await f.key("durable");
  const { json } = await f.request("/v1/jobs", { key, body: { prompt: "finish while the API is away", webhook_url: hook.url } });
  await f.runtime.close(); // the API's feed and outbox stop: nobody hears the completion
  await startWorker(f);
  await until(async () => (await f.s.store.get(json.id))?.status === "succeeded", "the job to finish", 30_000);
  assert.equal(hook.received.length, 0);
  await f.restart();
  await until(() => hook.received.length === 1, "the delivery after the restart", 10_000);
  assert.ok(verifyWebhook(webhookSecret!, hook.received[0]!.signature, hook.received[0]!.body));
  assert.equal(JSON.parse(hook.received[0]!.body).data.id, json.id);
});

async function deliveryRow(f: ApiFixture, jobId: string): Promise<{ status: string; attempts: number; last_status: number | null } | undefined> {
  const res = await f.s.pool.query("SELECT status, attempts, last_status FROM api_webhook_deliveries WHERE subject_id = $1", [jobId]);
  return res.rows[0];
}
