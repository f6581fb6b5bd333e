/**
 * A job that kills its worker on every delivery, with real worker processes (SIGKILL from the fault harness, replaced
 * by a supervisor as systemd would): the jobs that died beside it come back visible together with it, and must not
 * follow it through every delivery into the DLQ. Every other job succeeds; the crashing one ends dead (WORKER_LOST)
 * with its message in the DLQ; nothing is lost or run twice at once.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildJob, encodeJob } from "../shared/contract.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { WorkerFleet } from "../scripts/fleet/supervisor.ts";
import { spawnWorker, WORKER_HARNESS } from "../scripts/fleet/worker-process.ts";
import { CRASH_MARKER, jobTag } from "../scripts/fleet/fault-jobs.ts";
import { overlappingCallIds } from "../scripts/fleet/overlapping-calls.ts";
import { queueFixture, stopEmulator, storeFixture, until } from "./support/env.ts";

after(() => stopEmulator());

const LOG_DIR = join(tmpdir(), "crash-cohort-test-logs");
const VISIBILITY_S = 10;
const MAX_RECEIVES = 5;

test("a job that crashes its worker every time dies alone: the jobs that died beside it all succeed", { timeout: 240_000 }, async () => {
  const q = await queueFixture({ visibilityTimeoutSeconds: VISIBILITY_S, maxReceiveCount: MAX_RECEIVES });
  const s = await storeFixture();
  // Slow enough that the crash job's batch-mates are mid-generation when it kills their worker.
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.5, seed: 7, requestLog: 1000 });
  const env: Record<string, string> = {
    QUEUE_URLS: q.queueUrl,
    SQS_ENDPOINT: q.endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    DATABASE_URL: schemaScopedUrl(s.url, s.schema),
    DATABASE_POOL_SIZE: "3",
    VLLM_URL: sim.url,
    PROVIDER_CHAIN: "vllm",
    ADAPTIVE_CONCURRENCY: "false",
    WORKER_CONCURRENCY: "32",
    SQS_WAIT_TIME_SECONDS: "1",
    SQS_VISIBILITY_TIMEOUT_SECONDS: String(VISIBILITY_S),
    SQS_MAX_RECEIVE_COUNT: String(MAX_RECEIVES),
    HEARTBEAT_INTERVAL_MS: "2500",
    MAINTENANCE_INTERVAL_MS: "1000",
    LOG_LEVEL: "warn",
  };
  const fleet = new WorkerFleet((name) => spawnWorker(name, env, LOG_DIR, [], "source", [WORKER_HARNESS]), () => undefined);
  const content = (id: string, marker = "") => `cohort ${jobTag(id)}${marker}: say something long`;
  const crash = buildJob({ id: "crasher", tenant: "t", messages: [{ role: "user", content: content("crasher", ` ${CRASH_MARKER}`) }], params: { max_tokens: 64 } });
  const mates = Array.from({ length: 19 }, (_, i) => buildJob({ id: `mate-${i}`, tenant: "t", messages: [{ role: "user", content: content(`mate-${i}`) }], params: { max_tokens: 64 } }));
  try {
    await fleet.start(2);
    // One batch: the crash job and its mates are received, claimed and started together.
    const bodies = [crash, ...mates].map((j) => encodeJob(j));
    for (let i = 0; i < bodies.length; i += 10) {
      const { failed } = await q.queue.sendBatch(q.queueUrl, bodies.slice(i, i + 10).map((body, k) => ({ id: String(k), body })));
      assert.deepEqual(failed, []);
    }
    const ids = [crash.id, ...mates.map((m) => m.id)];
    await until(async () => {
      const rows = await s.store.getMany(ids);
      return rows.length === ids.length && rows.every((r) => r.status !== "queued" && r.status !== "running");
    }, "every job terminal", 200_000);
    const rows = new Map((await s.store.getMany(ids)).map((r) => [r.id, r]));
    assert.ok(fleet.crashes >= 1, "the crash job took a worker down");
    const lost = mates.filter((m) => rows.get(m.id)?.status !== "succeeded").map((m) => `${m.id}: ${rows.get(m.id)?.status} ${rows.get(m.id)?.error?.code}`);
    assert.deepEqual(lost, [], "every batch-mate of the crash job succeeded");
    for (const m of mates) assert.equal(rows.get(m.id)?.resultWrites, 1, `${m.id} written once`);
    assert.equal(rows.get(crash.id)?.status, "dead");
    assert.equal(rows.get(crash.id)?.error?.code, "WORKER_LOST");
    const calls = sim.requestLog();
    assert.equal(calls.dropped, 0);
    assert.deepEqual(overlappingCallIds(calls.entries), [], "never two calls for one job at once");
  } finally {
    await fleet.stop();
    await sim.close();
    await s.close();
  }
});
