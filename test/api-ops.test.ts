/**
 * The Results API's probes and metrics: served without a key beside /v1, ready only while Postgres and the queue
 * answer and the API is not closing, and a metrics registry that labels requests by route template, never by id.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import Fastify from "fastify";
import { registerOpsRoutes } from "../shared/health/ops-routes.ts";
import { StoreError } from "../shared/errors.ts";
import { ApiHealth } from "../producer/api/api-health.ts";
import { apiFixture } from "./support/api.ts";
import { silentLog, stopEmulator } from "./support/env.ts";

after(() => stopEmulator());

test("API ops routes: health without a key, components up; /metrics counts requests by route template", async () => {
  const api = await apiFixture();
  try {
    const ready = await api.request("/health/ready");
    assert.equal(ready.status, 200, JSON.stringify(ready.json));
    const health = await api.request("/health");
    assert.deepEqual([health.json.components.store.state, health.json.components.queue.state, health.json.components.redis.state], ["up", "up", "up"]);
    assert.equal((await api.request("/health/live")).status, 200);
    const { key } = await api.key("ops-tenant");
    const missing = await api.request("/v1/jobs/no-such-job-4711", { key });
    assert.equal(missing.status, 404);
    const metrics = await fetch(`${api.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /api_http_request_duration_seconds_count\{route="\/v1\/jobs\/:id",method="GET",status="404"\} 1/);
    assert.doesNotMatch(metrics, /no-such-job-4711/, "ids never become labels");
    assert.match(metrics, /^process_resident_memory_bytes /m);
    const spec = (await api.request("/openapi.json")).json as { paths: Record<string, unknown> };
    assert.ok(!Object.keys(spec.paths).some((p) => p.startsWith("/health") || p === "/metrics"), "probes stay out of the API's description");
  } finally {
    await api.close();
  }
});

test("API readiness: 503 naming the store while Postgres fails, naming the api while closing; 200 between", async () => {
  let storeUp = true;
  const health = new ApiHealth({
    ttlMs: 0,
    pingStore: async () => {
      if (!storeUp) throw new StoreError("STORE_UNAVAILABLE", "connection refused by postgres://u:secret@db", true);
    },
    queueUrl: "http://sqs.local/000000000000/jobs",
    checkQueue: async () => undefined,
  });
  const app = Fastify();
  registerOpsRoutes(app, { health, log: silentLog });
  try {
    const ready = async () => app.inject({ url: "/health/ready" });
    assert.equal((await ready()).statusCode, 200);
    storeUp = false;
    const down = await ready();
    assert.equal(down.statusCode, 503);
    assert.deepEqual(down.json().failing, [{ component: "store", reason: "STORE_UNAVAILABLE" }]);
    assert.doesNotMatch((await app.inject({ url: "/health" })).body, /secret|postgres:/, "codes, never messages");
    storeUp = true;
    assert.equal((await ready()).statusCode, 200);
    health.markClosing();
    const closing = await ready();
    assert.equal(closing.statusCode, 503);
    assert.deepEqual(closing.json().failing, [{ component: "api", reason: "CLOSING" }]);
    assert.equal((await app.inject({ url: "/metrics" })).statusCode, 404, "no registry given: 404");
  } finally {
    await app.close();
  }
});
