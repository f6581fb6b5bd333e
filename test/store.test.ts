import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import { StoreError } from "../shared/errors.ts";
import { decodeRecord, encodeRecord } from "../shared/store/job-record.ts";
import { JobStore, type ClaimOutcome } from "../shared/store/jobs.ts";
import { loadMigrations, migrate } from "../shared/store/migrate.ts";
import { createPool } from "../shared/store/pool.ts";
import { claimItem, job, ok, PG_URL as URL, result, StoreSchemas } from "./support/store-schema.ts";

// The schemas, and every pool a test opens, are removed at the end.
const schemas = new StoreSchemas();
const setup = schemas.setup.bind(schemas);
after(() => schemas.dropAll());

describe("migrate", () => {
  test("concurrent migrations apply each file once", async () => {
    const { pools: [a, b, c] } = await setup(3);
    await Promise.all([migrate(a as pg.Pool), migrate(b as pg.Pool), migrate(c as pg.Pool)]);
    const rows = (await (a as pg.Pool).query("SELECT version, name FROM schema_migrations ORDER BY version")).rows;
    // Every shipped file, once each (listed from the folder: a new migration needs no edit here).
    const shipped = (await loadMigrations()).map((m) => ({ version: m.version, name: m.name }));
    assert.ok(shipped.some((m) => m.name === "0001_jobs.sql"));
    assert.deepEqual(rows, shipped);
    await assert.rejects((a as pg.Pool).query("INSERT INTO jobs (id, status) VALUES ('x', 'bogus')"), /check constraint/);
  });
});

describe("JobRecord encoding", () => {
  test("outputNulReplaced survives the cache encoding, and a record encoded before it existed decodes as 0", async () => {
    const { stores: [s] } = await setup();
    const j = job();
    ok(await s!.claim([claimItem(j, "w")]));
    assert.deepEqual(await s!.complete([result(j.id, "w", "a\u0000b")]), ["written"]);
    const rec = await s!.get(j.id);
    assert.equal(rec?.outputNulReplaced, 1);
    assert.deepEqual(decodeRecord(encodeRecord(rec!)), rec);
    const older = JSON.parse(encodeRecord(rec!)) as Record<string, unknown>;
    delete older.outputNulReplaced;
    assert.equal(decodeRecord(JSON.stringify(older))?.outputNulReplaced, 0);
  });
});

describe("trace id", () => {
  const [t1, t2, t3] = ["a".repeat(32), "b".repeat(32), "c".repeat(32)];

  test("claim stores the delivery's trace id, complete the answering one's; reads and the cache encoding return it", async () => {
    const { stores: [s] } = await setup();
    const [j, old] = [job(), job()];
    ok(await s!.claim([{ ...claimItem(j, "w"), traceId: t1 }, claimItem(old, "w")]));
    assert.equal((await s!.get(j.id))?.traceId, t1);
    assert.ok(!("traceId" in (await s!.get(old.id))!), "no trace id (an older worker): no field");
    assert.deepEqual(await s!.complete([{ ...result(j.id, "w"), traceId: t2 }, result(old.id, "w")]), ["written", "written"]);
    const rec = await s!.get(j.id);
    assert.equal(rec?.traceId, t2);
    assert.deepEqual(decodeRecord(encodeRecord(rec!)), rec);
    assert.equal((await s!.get(old.id))?.traceId, undefined);
  });

  test("finish stores it on a row it creates and on one it ends; a finish without one keeps the row's", async () => {
    const { stores: [s] } = await setup();
    const [created, ended, kept] = [job(), job(), job()];
    ok(await s!.claim([{ ...claimItem(ended, "w"), traceId: t1 }, { ...claimItem(kept, "w"), traceId: t1 }]));
    const fail = (j: typeof created, traceId?: string) => ({ id: j.id, workerId: "w", tenant: "acme", status: "failed" as const, code: "X", message: "x", traceId });
    assert.deepEqual(await s!.finish([fail(created, t3), fail(ended, t2), fail(kept)]), ["written", "written", "written"]);
    const traces = new Map((await s!.getMany([created.id, ended.id, kept.id])).map((r) => [r.id, r.traceId]));
    assert.deepEqual([traces.get(created.id), traces.get(ended.id), traces.get(kept.id)], [t3, t2, t1]);
  });
});

describe("JobStore", () => {
  test("two workers claiming the same id at once: exactly one claims, the other sees the lease", async () => {
    const { stores: [a, b] } = await setup(2);
    const j = job();
    const [ra, rb] = (await Promise.all([a!.claim([claimItem(j, "wa")]), b!.claim([claimItem(j, "wb")])])).map((r) => ok<ClaimOutcome>(r)) as [ClaimOutcome[], ClaimOutcome[]];
    const outcomes = [ra[0], rb[0]];
    const claimed = outcomes.filter((o) => o?.kind === "claimed");
    const leased = outcomes.filter((o) => o?.kind === "leased");
    assert.equal(claimed.length, 1);
    assert.equal(leased.length, 1);
    const winner = ra[0]?.kind === "claimed" ? "wa" : "wb";
    assert.deepEqual(claimed[0], { kind: "claimed", attempts: 1, workerLosses: 0 });
    const l = leased[0] as { owner: string; expiresAt: Date };
    assert.equal(l.owner, winner);
    assert.ok(l.expiresAt.getTime() > Date.now() + 50_000);
    const rec = await a!.get(j.id);
    assert.equal(rec?.status, "running");
    assert.equal(rec?.attempts, 1);
    assert.equal(rec?.tenant, "acme");
  });

  test("an expired lease is taken over; the old holder then loses its writes", async () => {
    const { stores: [a, b], pools: [pa] } = await setup(2);
    const j = job();
    assert.equal(ok(await a!.claim([claimItem(j, "wa")]))[0]?.kind, "claimed");
    // Time passing without sleeping: move the lease into the past.
    await pa!.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [j.id]);
    assert.deepEqual(await b!.claim([claimItem(j, "wb")]), [{ kind: "claimed", attempts: 2, workerLosses: 1 }]);
    assert.deepEqual(await a!.complete([result(j.id, "wa")]), ["lost_lease"]);
    await a!.release([{ id: j.id, workerId: "wa", code: "X", message: "stale" }]);
    assert.deepEqual(await a!.finish([{ id: j.id, workerId: "wa", tenant: j.tenant, status: "failed", code: "X", message: "stale" }]), ["lost_lease"]);
    assert.deepEqual(await b!.complete([result(j.id, "wb")]), ["written"]);
    const rec = await b!.get(j.id);
    assert.equal(rec?.output, "out-wb");
    assert.equal(rec?.resultWrites, 1);
    assert.equal(rec?.attempts, 2);
  });

  test("two concurrent completes of the same id: first result kept, one write, the other already_finished", async () => {
    const { stores: [a, b], pools: [pa] } = await setup(2);
    const j = job();
    await a!.claim([claimItem(j, "wa")]);
    // Clear the lease so both are entitled to write (e.g. a stale holder and a late redelivery): only the race decides.
    await pa!.query("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1", [j.id]);
    const [ra, rb] = await Promise.all([a!.complete([result(j.id, "wa")]), b!.complete([result(j.id, "wb")])]);
    assert.deepEqual([ra[0], rb[0]].sort(), ["already_finished", "written"]);
    const winner = ra[0] === "written" ? "wa" : "wb";
    const rows = (await pa!.query("SELECT output, result_writes, status, lease_owner FROM jobs WHERE id = $1", [j.id])).rows;
    assert.deepEqual(rows, [{ output: `out-${winner}`, result_writes: 1, status: "succeeded", lease_owner: null }]);
  });

  test("finish never overwrites a terminal row", async () => {
    const { stores: [s] } = await setup();
    const j = job();
    await s!.claim([claimItem(j, "w")]);
    assert.deepEqual(await s!.complete([result(j.id, "w", "the answer")]), ["written"]);
    assert.deepEqual(await s!.finish([{ id: j.id, status: "failed", code: "PROVIDER_BAD_REQUEST", message: "late", workerId: "w", tenant: j.tenant, request: JSON.stringify(j), createdAt: j.created_at }]), ["already_finished"]);
    assert.deepEqual(await s!.complete([result(j.id, "w", "second answer")]), ["already_finished"]);
    assert.deepEqual(await s!.claim([claimItem(j, "w2")]), [{ kind: "finished", status: "succeeded" }]);
    const rec = await s!.get(j.id);
    assert.equal(rec?.status, "succeeded");
    assert.equal(rec?.output, "the answer");
    assert.equal(rec?.error, undefined);
    assert.equal(rec?.resultWrites, 1);
    assert.deepEqual(rec?.usage, { promptTokens: 3, completionTokens: 5 });
    assert.ok(rec?.finishedAt instanceof Date);
  });

  test("poison recorded by id alone, and an expired job recorded before any claim", async () => {
    const { stores: [s] } = await setup();
    const expired = job();
    const out = await s!.finish([
      { id: "poison-1", status: "dead", code: "JOB_INVALID", message: "invalid job: prompt: required", poison: true, request: '{"id":"poison-1"}' },
      { id: expired.id, status: "expired", code: "JOB_EXPIRED", message: "deadline passed", tenant: expired.tenant, request: JSON.stringify(expired), createdAt: expired.created_at },
    ]);
    assert.deepEqual(out, ["written", "written"]);
    const poison = await s!.get("poison-1");
    assert.equal(poison?.status, "dead");
    assert.equal(poison?.tenant, undefined);
    assert.deepEqual(poison?.error, { code: "JOB_INVALID", message: "invalid job: prompt: required" });
    assert.equal(poison?.resultWrites, 1);
    assert.equal(poison?.attempts, 0);
    const exp = await s!.get(expired.id);
    assert.equal(exp?.tenant, "acme");
    assert.equal(exp?.createdAt.toISOString(), new Date(expired.created_at).toISOString());
    // Redelivered poison: it only ever inserts, so it conflicts with its own earlier record, and nothing changes.
    assert.deepEqual(await s!.finish([{ id: "poison-1", status: "failed", code: "OTHER", message: "again", poison: true }]), ["conflict"]);
    assert.equal((await s!.get("poison-1"))?.resultWrites, 1);
    assert.equal((await s!.get("poison-1"))?.error?.code, "JOB_INVALID");
  });

  test("release keeps the error and requeues; a re-claim increments attempts; only the holder can release", async () => {
    const { stores: [s] } = await setup();
    const j = job();
    await s!.claim([claimItem(j, "w1")]);
    await s!.release([{ id: j.id, workerId: "intruder", code: "X", message: "not mine" }]);
    assert.equal((await s!.get(j.id))?.status, "running");
    await s!.release([{ id: j.id, workerId: "w1", code: "PROVIDER_OVERLOADED", message: "503 from vllm" }]);
    const queued = await s!.get(j.id);
    assert.equal(queued?.status, "queued");
    assert.deepEqual(queued?.error, { code: "PROVIDER_OVERLOADED", message: "503 from vllm" });
    assert.deepEqual(await s!.claim([claimItem(j, "w2")]), [{ kind: "claimed", attempts: 2, workerLosses: 0 }]);
    assert.deepEqual(await s!.complete([result(j.id, "w2")]), ["written"]);
    const done = await s!.get(j.id);
    assert.equal(done?.error, undefined, "a success clears the last retryable error");
    assert.equal(done?.attempts, 2);
  });

  test("provider calls are counted and leases extended only for the holder", async () => {
    const { stores: [s], pools: [p] } = await setup();
    const j = job();
    await s!.claim([claimItem(j, "w", 1_000)]);
    await s!.recordProviderCall([j.id, j.id]);
    assert.equal((await s!.get(j.id))?.providerCalls, 2);
    const before = (await p!.query("SELECT lease_expires_at FROM jobs WHERE id = $1", [j.id])).rows[0].lease_expires_at as Date;
    assert.deepEqual(await s!.extendLeases([j.id], "someone-else", 600_000), []);
    const unchanged = (await p!.query("SELECT lease_expires_at FROM jobs WHERE id = $1", [j.id])).rows[0].lease_expires_at as Date;
    assert.equal(unchanged.getTime(), before.getTime());
    assert.deepEqual(await s!.extendLeases([j.id, "missing"], "w", 600_000), [j.id]);
    const extended = (await p!.query("SELECT lease_expires_at FROM jobs WHERE id = $1", [j.id])).rows[0].lease_expires_at as Date;
    assert.ok(extended.getTime() > before.getTime() + 500_000);
  });

  test("the same id twice in one batch: one claim, one write", async () => {
    const { stores: [s] } = await setup();
    const j = job();
    const claims = ok(await s!.claim([claimItem(j, "w"), claimItem(j, "w")]));
    assert.equal(claims[0]?.kind, "claimed");
    assert.equal(claims[1]?.kind, "leased");
    assert.deepEqual(await s!.complete([result(j.id, "w", "a"), result(j.id, "w", "b")]), ["written", "already_finished"]);
    const rec = await s!.get(j.id);
    assert.equal(rec?.output, "a");
    assert.equal(rec?.resultWrites, 1);
    assert.equal(rec?.attempts, 1);
  });

  test("a batch of 500 claims and completes in one call each", async () => {
    const { stores: [s] } = await setup();
    const jobs = Array.from({ length: 500 }, (_, i) => job(`bulk-${i}`));
    const claims = ok(await s!.claim(jobs.map((j) => claimItem(j, "w"))));
    assert.equal(claims.length, 500);
    assert.ok(claims.every((c) => c.kind === "claimed" && c.attempts === 1));
    const writes = await s!.complete(jobs.map((j) => result(j.id, "w", `answer ${j.id} "quoted" \\ {braces},`)));
    assert.ok(writes.every((w) => w === "written"));
    const counts = await s!.countByStatus();
    assert.equal(counts.succeeded, 500);
    assert.equal(counts.running, 0);
    const some = await s!.getMany(["bulk-0", "bulk-499", "absent"]);
    assert.deepEqual(some.map((r) => r.output).sort(), ['answer bulk-0 "quoted" \\ {braces},', 'answer bulk-499 "quoted" \\ {braces},']);
  });

  test("an unreachable database is STORE_UNAVAILABLE, retryable, and the message hides the URL", async () => {
    const pool = await createPool({ url: "postgres://postgres:s3cretpw@127.0.0.1:1/test", poolSize: 1, connectTimeoutMs: 1_000 });
    schemas.track(pool);
    const s = new JobStore(pool);
    const err = await s.claim([claimItem(job(), "w")]).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "STORE_UNAVAILABLE");
    assert.equal(err.retryable, true);
    assert.doesNotMatch(err.message, /s3cretpw|postgres:\/\//);
    const schemaErr = await createPool({ url: "postgres://postgres:s3cretpw@127.0.0.1:1/test", poolSize: 1, schema: "x", connectTimeoutMs: 1_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(schemaErr instanceof StoreError && schemaErr.code === "STORE_UNAVAILABLE");
  });

  test("a backend terminated mid-statement is STORE_UNAVAILABLE (57P01), and the pool recovers", async () => {
    const { stores: [s], pools: [p] } = await setup();
    const j = job();
    await s!.claim([claimItem(j, "w")]);
    // Hold the row lock so complete() blocks in the server, then kill the backend running it.
    const locker = await p!.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", [j.id]);
      const lockerPid = (await locker.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
      const pending = s!.complete([result(j.id, "w")]).then(() => undefined, (e: unknown) => e);
      // Polled from outside the locker's transaction: pg_stat_activity is a snapshot taken once per transaction.
      let victim: number | undefined;
      while (victim === undefined) {
        const r = await p!.query("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [lockerPid]);
        victim = r.rows[0]?.pid as number | undefined;
      }
      await p!.query("SELECT pg_terminate_backend($1)", [victim]);
      const err = await pending;
      assert.ok(err instanceof StoreError, String(err));
      assert.equal(err.code, "STORE_UNAVAILABLE");
      assert.equal(err.retryable, true);
    } finally {
      await locker.query("ROLLBACK");
      locker.release();
    }
    assert.deepEqual(await s!.complete([result(j.id, "w")]), ["written"]);
  });

  test("throughput of claim+complete batches (printed, not asserted)", async () => {
    const { stores: [s] } = await setup();
    for (const size of [10, 100]) {
      const rounds = size === 10 ? 100 : 20;
      const t0 = performance.now();
      for (let r = 0; r < rounds; r++) {
        const jobs = Array.from({ length: size }, () => job());
        await s!.claim(jobs.map((j) => claimItem(j, "w")));
        await s!.complete(jobs.map((j) => result(j.id, "w")));
      }
      const perSec = Math.round((rounds * size) / ((performance.now() - t0) / 1000));
      console.log(`# batch ${size}: ${perSec} claim+complete/s (${rounds} rounds, one connection at a time)`);
    }
  });
});
