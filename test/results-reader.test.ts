import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { buildJob } from "../shared/contract.ts";
import { StoreError } from "../shared/errors.ts";
import type { JobRecord } from "../shared/store/job-record.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool } from "../shared/store/pool.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { ResultReader } from "../producer/results.ts";
import { REDIS_URL, storeFixture } from "./support/env.ts";

/** Nothing listens on port 1: every query fails at once with ECONNREFUSED, as when Postgres is down. */
const DOWN_URL = "postgres://postgres@127.0.0.1:1/test";
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function cache(): Promise<ResultsCache> {
  const c = new ResultsCache({ url: REDIS_URL, ttlSeconds: 120, keyPrefix: `test:reader:${randomBytes(5).toString("hex")}:` });
  closers.push(() => c.close());
  assert.ok(await c.ready(), "Redis is up for this test");
  return c;
}

async function downStore(): Promise<JobStore> {
  const pool = await createPool({ url: DOWN_URL, poolSize: 1, connectTimeoutMs: 2_000 });
  closers.push(() => pool.end());
  return new JobStore(pool);
}

function finished(id: string): JobRecord {
  return {
    id,
    tenant: "acme",
    status: "succeeded",
    output: "ok",
    outputNulReplaced: 0,
    finishReason: "stop",
    usage: { promptTokens: 1, completionTokens: 1 },
    provider: "vllm",
    model: "m",
    attempts: 1,
    providerCalls: 1,
    resultWrites: 1,
    error: undefined,
    createdAt: new Date(),
    startedAt: new Date(),
    finishedAt: new Date(),
  };
}

test("get: with Postgres down, the Redis record answers and the reader says so", async () => {
  const c = await cache();
  await c.putMany([finished("hot-1")]);
  const found = await new ResultReader(await downStore(), c).find("hot-1");
  assert.equal(found?.record.id, "hot-1");
  assert.equal(found?.record.status, "succeeded");
  assert.equal(found?.source, "redis");
});

test("get: with Postgres down and nothing in Redis, a StoreError says the store is unreachable, without the URL", async () => {
  const reader = new ResultReader(await downStore(), await cache());
  await assert.rejects(reader.get("cold-1"), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "STORE_UNAVAILABLE");
    assert.match(err.message, /job store \(Postgres\) is unreachable/);
    assert.match(err.message, /cold-1/);
    assert.ok(!err.message.includes("127.0.0.1") && !err.message.includes("postgres://"), err.message);
    return true;
  });
});

test("get: Postgres answers when up (its record is the source of truth for unfinished jobs)", async () => {
  const s = await storeFixture();
  closers.push(() => s.close());
  await s.store.claim([{ job: buildJob({ id: "pg-1", tenant: "acme", prompt: "p" }), workerId: "w1", leaseMs: 60_000, messageId: "m1", receiveCount: 1 }]);
  const found = await new ResultReader(s.store, await cache()).find("pg-1");
  assert.equal(found?.source, "postgres");
  assert.equal(found?.record.status, "running");
  assert.equal(await new ResultReader(s.store).get("nope"), undefined);
});

test("wait: an id with no record anywhere after the grace period is reported unknown; a claimed one is not", async () => {
  const s = await storeFixture();
  closers.push(() => s.close());
  await s.store.claim([{ job: buildJob({ id: "w-running", tenant: "acme", prompt: "p" }), workerId: "w1", leaseMs: 60_000, messageId: "m1", receiveCount: 1 }]);
  await s.store.finish([{ id: "w-failed", status: "failed", code: "X", message: "boom", tenant: "acme" }]);
  const reader = new ResultReader(s.store, await cache());
  // w-running stays running, so this wait ends at the signal; the ghost must be named long before that.
  const result = await reader.waitForAll(["w-running", "w-failed", "w-ghost"], { unknownAfterMs: 0, pollMs: 50, signal: AbortSignal.timeout(1_500) });
  assert.deepEqual(result.unknown, ["w-ghost"]);
  assert.equal(result.records.get("w-failed")?.status, "failed");
  assert.equal(result.records.has("w-running"), false);
});

test("wait: when every pending id is unknown, the wait ends without waiting for the signal", async () => {
  const s = await storeFixture();
  closers.push(() => s.close());
  const reader = new ResultReader(s.store);
  const never = new AbortController(); // never aborted: only the unknown rule can end this wait
  const result = await reader.waitForAll(["ghost-a", "ghost-b"], { unknownAfterMs: 0, pollMs: 50, signal: never.signal });
  assert.deepEqual(result.unknown.sort(), ["ghost-a", "ghost-b"]);
  assert.equal(result.records.size, 0);
});

test("wait: no id is declared unknown while Postgres cannot answer; Redis records still arrive", async () => {
  const c = await cache();
  await c.putMany([finished("o-hot")]);
  const errors: string[] = [];
  const reader = new ResultReader(await downStore(), c);
  const result = await reader.waitForAll(["o-hot", "o-cold"], { unknownAfterMs: 0, pollMs: 50, signal: AbortSignal.timeout(1_500), onStoreError: (e) => errors.push(e.code) });
  assert.equal(result.records.get("o-hot")?.status, "succeeded");
  assert.deepEqual(result.unknown, []);
  assert.ok(errors.includes("STORE_UNAVAILABLE"), `store errors reported: ${errors.join(",")}`);
});

test("wait: without unknownAfterMs nothing is ever declared unknown (the demo's behaviour)", async () => {
  const s = await storeFixture();
  closers.push(() => s.close());
  const result = await new ResultReader(s.store).waitForAll(["nobody"], { pollMs: 50, signal: AbortSignal.timeout(500) });
  assert.deepEqual(result.unknown, []);
});
