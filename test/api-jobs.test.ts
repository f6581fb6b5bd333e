/**
 * The Results API's jobs resource against real Postgres, Redis, the SQS emulator, a real worker and the vLLM
 * simulator: submit and read, long polls woken by Redis and by LISTEN/NOTIFY, tenant isolation, keys, limits.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { Producer } from "../producer/producer.ts";
import { startVllmSimulator, type RunningSimulator } from "../scripts/simulators/vllm/server.ts";
import { apiFixture, type ApiFixture } from "./support/api.ts";
import { stopEmulator, until } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await stopEmulator();
});

async function fixture(o: Parameters<typeof apiFixture>[0] = {}): Promise<ApiFixture> {
  const f = await apiFixture(o);
  closers.push(() => f.close());
  return f;
}

let simulator: RunningSimulator | undefined;
async function sim(): Promise<RunningSimulator> {
  if (simulator === undefined) {
    simulator = await startVllmSimulator({ port: 0, timeScale: 0.05 });
    closers.unshift(() => simulator!.close());
  }
  return simulator;
}

async function worker(f: ApiFixture): Promise<void> {
  const w = testWorker(f.q, f.s.store, (await sim()).url, { cache: f.cache });
  closers.push(() => w.stop());
}

test("submit one job and a list; GET returns the status, then the result once a worker has run it", async () => {
  const f = await fixture();
  const { key } = await f.key("acme");
  const one = await f.request("/v1/jobs", { key, body: { prompt: "hello", params: { max_tokens: 8 } } });
  assert.equal(one.status, 202);
  assert.equal(one.json.object, "job");
  assert.equal(one.json.status, "queued");
  const before = await f.request(`/v1/jobs/${one.json.id}`, { key });
  assert.equal(before.status, 200, "readable as queued before any worker claims it");
  assert.equal(before.json.status, "queued");

  const list = await f.request("/v1/jobs", { key, body: [{ id: "mine-1", prompt: "a" }, { id: "mine-1", prompt: "b" }, { messages: [{ role: "user", content: "c" }] }] });
  assert.equal(list.status, 202);
  assert.deepEqual(list.json.data.map((d: { index: number }) => d.index), [2]);
  assert.deepEqual(list.json.errors.map((e: { index: number; code: string }) => [e.index, e.code]), [[0, "job_duplicate_id"], [1, "job_duplicate_id"]]);

  await worker(f);
  for (const id of [one.json.id, list.json.data[0].id]) {
    const done = await f.request(`/v1/jobs/${id}?wait=30`, { key });
    assert.equal(done.status, 200);
    assert.equal(done.json.status, "succeeded", JSON.stringify(done.json));
    assert.ok(done.json.output.length > 0);
    assert.ok(done.json.usage.total_tokens > 0);
    assert.equal(done.json.error, null);
  }
});

/** GET ?wait=30 while no worker runs, start one once the request waits, and time the answer from there. */
async function timedLongPoll(f: ApiFixture): Promise<{ status: string; waitedMs: number; afterWorkerMs: number }> {
  const { key } = await f.key("acme");
  const { json } = await f.request("/v1/jobs", { key, body: { prompt: "long poll", params: { max_tokens: 4 } } });
  const started = performance.now();
  const answer = f.request(`/v1/jobs/${json.id}?wait=30`, { key });
  await until(() => f.runtime.deps.feed.waiting === 1, "the GET to be waiting");
  const workerStarted = performance.now();
  await worker(f);
  const res = await answer;
  const now = performance.now();
  return { status: res.json.status, waitedMs: now - started, afterWorkerMs: now - workerStarted };
}

test("long poll (Redis wake-ups only): answers as soon as the job ends, far inside the wait", async () => {
  const f = await fixture({ wakeUps: { postgres: false, redis: true } });
  const r = await timedLongPoll(f);
  assert.equal(r.status, "succeeded");
  assert.ok(r.waitedMs < 10_000, `answered after ${r.waitedMs} ms of a 30 s wait`);
  assert.ok(r.afterWorkerMs < 5_000, `answered ${r.afterWorkerMs} ms after the worker started`);
  assert.equal(f.runtime.deps.feed.waiting, 0);
});

test("long poll without Redis: woken by Postgres LISTEN/NOTIFY, as soon as the job ends", async () => {
  const f = await fixture({ redis: false });
  const r = await timedLongPoll(f);
  assert.equal(r.status, "succeeded");
  assert.ok(r.waitedMs < 10_000, `answered after ${r.waitedMs} ms of a 30 s wait`);
  assert.ok(r.afterWorkerMs < 5_000, `answered ${r.afterWorkerMs} ms after the worker started`);
});

test("long poll: a wait that runs out answers with the current state; a client that leaves early is forgotten", async () => {
  const f = await fixture({ redis: false });
  const { key } = await f.key("acme");
  const { json } = await f.request("/v1/jobs", { key, body: { prompt: "nobody runs me" } });
  const t0 = performance.now();
  const timedOut = await f.request(`/v1/jobs/${json.id}?wait=1`, { key });
  assert.equal(timedOut.json.status, "queued");
  assert.ok(performance.now() - t0 >= 950, "waited the second it asked for");

  const url = new URL(`${f.url}/v1/jobs/${json.id}?wait=30`);
  const req = httpRequest(url, { headers: { authorization: `Bearer ${key}` } });
  req.on("error", () => undefined);
  req.end();
  await until(() => f.runtime.deps.feed.waiting === 1, "the GET to be waiting");
  req.destroy();
  await until(() => f.runtime.deps.feed.waiting === 0, "the waiter to be removed", 5_000);

  const tooLong = await f.request(`/v1/jobs/${json.id}?wait=61`, { key });
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.json.error.param, "wait");
});

test("tenants: another tenant's job is 404 like an unknown id; a body tenant must be the key's own", async () => {
  const f = await fixture();
  const a = await f.key("tenant-a");
  const b = await f.key("tenant-b");
  const { json } = await f.request("/v1/jobs", { key: a.key, body: { prompt: "a's secret" } });
  const theirs = await f.request(`/v1/jobs/${json.id}`, { key: b.key });
  const unknown = await f.request("/v1/jobs/no-such-job", { key: b.key });
  assert.equal(theirs.status, 404);
  assert.deepEqual(theirs.json.error, { ...unknown.json.error, message: theirs.json.error.message });
  assert.equal(theirs.json.error.type, "invalid_request_error");
  assert.equal((await f.request(`/v1/jobs/${json.id}`, { key: a.key })).status, 200);

  const spoof = await f.request("/v1/jobs", { key: b.key, body: { prompt: "x", tenant: "tenant-a" } });
  assert.equal(spoof.status, 400);
  assert.equal(spoof.json.error.code, "tenant_mismatch");
  assert.equal(spoof.json.error.param, "tenant");
  assert.equal((await f.request("/v1/jobs", { key: b.key, body: { prompt: "x", tenant: "tenant-b" } })).status, 202);
});

test("jobs put straight onto SQS by another service are readable by id, for their tenant only", async () => {
  const f = await fixture();
  const a = await f.key("direct-a");
  const b = await f.key("direct-b");
  const id = await new Producer({ queue: f.q.queue, queueUrl: f.q.queueUrl }).submit({ tenant: "direct-a", prompt: "from elsewhere" });
  await worker(f);
  const mine = await f.request(`/v1/jobs/${id}?wait=30`, { key: a.key });
  assert.equal(mine.status, 200);
  assert.equal(mine.json.status, "succeeded");
  assert.equal((await f.request(`/v1/jobs/${id}`, { key: b.key })).status, 404);
});

test("auth: a missing, unknown or revoked key is a 401 invalid_api_key, in OpenAI's shape", async () => {
  const f = await fixture();
  const { key, id } = await f.key("acme");
  for (const [what, headers] of [
    ["missing", {}],
    ["not bearer", { authorization: `Basic ${key}` }],
    ["unknown", { authorization: "Bearer sk-fleet-not-a-real-key" }],
  ] as const) {
    const res = await f.request("/v1/jobs/x", { headers });
    assert.equal(res.status, 401, what);
    assert.equal(res.json.error.code, "invalid_api_key", what);
    assert.equal(res.json.error.type, "invalid_request_error");
    assert.equal(res.json.error.param, null);
  }
  assert.equal((await f.request("/v1/jobs/x", { key })).status, 404);
  assert.ok(await f.runtime.deps.keys.revoke(id));
  const revoked = await f.request("/v1/jobs/x", { key });
  assert.equal(revoked.status, 401);
  assert.ok(!JSON.stringify(revoked.json).includes(key), "the key is never echoed");
  const listed = await f.runtime.deps.keys.list("acme");
  assert.equal(listed.length, 1);
  assert.ok(listed[0]!.revokedAt instanceof Date);
  assert.ok(key.startsWith(listed[0]!.prefix) && listed[0]!.prefix.length < 20);
});

test("rate limit: one bucket per key shared by two replicas through Redis; 429 with Retry-After", async () => {
  const config = { rateLimit: { perMinute: 6, burst: 3 } };
  const a = await fixture({ config });
  const b = await fixture({ config, sharing: a });
  const { key } = await a.key("acme");
  const other = await a.key("acme");
  const statuses = [];
  for (const f of [a, b, a]) statuses.push((await f.request("/v1/jobs/x", { key })).status);
  assert.deepEqual(statuses, [404, 404, 404]);
  const refused = await b.request("/v1/jobs/x", { key });
  assert.equal(refused.status, 429, "the fourth request, on the other replica, finds the bucket empty");
  assert.equal(refused.json.error.code, "rate_limit_exceeded");
  const retryAfter = Number(refused.headers.get("retry-after"));
  assert.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`);
  assert.equal(refused.headers.get("x-ratelimit-remaining-requests"), "0");
  assert.equal((await a.request("/v1/jobs/x", { key: other.key })).status, 404, "another key has its own bucket");
});

test("rate limit without Redis: each replica's own bucket", async () => {
  const f = await fixture({ redis: false, config: { rateLimit: { perMinute: 60, burst: 2 } } });
  const { key } = await f.key("acme");
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await f.request("/v1/jobs/x", { key })).status);
  assert.deepEqual(statuses, [404, 404, 429]);
});

test("errors: validation names the field, over-size bodies are 413, unknown routes 404, all in OpenAI's shape", async () => {
  const f = await fixture({ config: { bodyLimitBytes: 4096 } });
  const { key } = await f.key("acme");
  const cases: [unknown, string | null, string][] = [
    [{ messages: [{ role: "user", content: "" }] }, "messages[0].content", "invalid_value"],
    [{ prompt: "x", params: { temperature: 9 } }, "params.temperature", "invalid_value"],
    [{ prompt: "x", colour: "blue" }, "colour", "unknown_parameter"],
    [{}, "messages", "invalid_value"],
    [[{ prompt: "ok" }, { prompt: 3 }], "[1].prompt", "invalid_value"],
    [{ prompt: "x", webhook_url: "ftp://example.com/" }, "webhook_url", "invalid_value"],
  ];
  for (const [body, param, code] of cases) {
    const res = await f.request("/v1/jobs", { key, body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.json.error.param, param, JSON.stringify(res.json));
    assert.equal(res.json.error.code, code, JSON.stringify(res.json));
    assert.equal(res.json.error.type, "invalid_request_error");
  }
  const big = await f.request("/v1/jobs", { key, body: { prompt: "x".repeat(5000) } });
  assert.equal(big.status, 413);
  assert.equal(big.json.error.code, "request_too_large");
  const notJson = await f.request("/v1/jobs", { key, body: "{nope" });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.json.error.code, "invalid_json");
  const unknown = await f.request("/v2/nothing", { key });
  assert.equal(unknown.status, 404);
  assert.deepEqual(Object.keys(unknown.json.error).sort(), ["code", "message", "param", "type"]);
});

test("GET /openapi.json parses and lists the routes with their schemas", async () => {
  const f = await fixture();
  const res = await fetch(`${f.url}/openapi.json`);
  assert.equal(res.status, 200);
  const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string }[] }>> };
  assert.match(doc.openapi, /^3\.1/);
  assert.ok(doc.paths["/v1/jobs"]?.post?.requestBody, "POST /v1/jobs with its body");
  const get = doc.paths["/v1/jobs/{id}"]?.get;
  assert.ok(get, "GET /v1/jobs/{id}");
  assert.deepEqual(get.parameters?.map((p) => p.name).sort(), ["id", "wait"]);
  assert.equal(doc.paths["/openapi.json"], undefined, "the document itself is not listed");
});

test("closing: a waiting long poll answers at once with what it has, and close() does not wait on its connection", async () => {
  const f = await apiFixture({ redis: false });
  const { key } = await f.key("acme");
  const { json } = await f.request("/v1/jobs", { key, body: { prompt: "still queued at shutdown" } });
  const answer = f.request(`/v1/jobs/${json.id}?wait=30`, { key });
  await until(() => f.runtime.deps.feed.waiting === 1, "the GET to be waiting");
  const t0 = performance.now();
  await f.close();
  const closedMs = performance.now() - t0;
  const res = await answer;
  assert.equal(res.status, 200);
  assert.equal(res.json.status, "queued");
  assert.ok(closedMs < 5_000, `close took ${closedMs} ms`);
});
