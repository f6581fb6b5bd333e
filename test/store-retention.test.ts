/**
 * The table's upkeep: heartbeats must be HOT updates (they write no indexed column), terminal rows are deleted
 * after the retention period, and the schema carries the indexes the queries need and no hot-path column.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import { claimItem, job, ok, result, StoreSchemas } from "./support/store-schema.ts";
import { until } from "./support/env.ts";

const schemas = new StoreSchemas();
after(() => schemas.dropAll());

interface UpdateStats {
  upd: number;
  hot: number;
}
/** This schema's jobs table counters, after the calling backend flushed its own pending statistics. */
async function updateStats(p: pg.Pool): Promise<UpdateStats> {
  await p.query("SELECT pg_stat_force_next_flush()");
  const r = (await p.query("SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass")).rows[0];
  return { upd: r.upd as number, hot: r.hot as number };
}

describe("HOT heartbeats", () => {
  test("lease extensions and provider-call counts are HOT updates", async () => {
    // One connection, so the statistics it flushes are all of this test's updates.
    const { stores: [s], pools: [p] } = await schemas.setup(1, { poolSize: 1 });
    // Few rows, so one page has room for every new version even if VACUUM cannot prune meanwhile (another
    // session's old snapshot would stop it): the test measures which columns the updates write, not pruning.
    const ids = Array.from({ length: 6 }, () => job());
    ok(await s!.claim(ids.map((j) => claimItem(j, "w"))));
    const before = await updateStats(p!);
    const rounds = 2;
    for (let r = 0; r < rounds; r++) await s!.extendLeases(ids.map((j) => j.id), "w", 60_000);
    ok(await s!.recordProviderCall(ids.map((j) => j.id)));
    const expected = ids.length * (rounds + 1);
    let after: UpdateStats = before;
    await until(async () => {
      after = await updateStats(p!);
      return after.upd - before.upd >= expected;
    }, "the updates to reach pg_stat_user_tables", 15_000);
    const upd = after.upd - before.upd;
    const hot = after.hot - before.hot;
    console.log(`# ${hot} of ${upd} updates were HOT`);
    assert.equal(upd, expected);
    assert.ok(hot >= 0.9 * upd, `${hot} of ${upd} updates were HOT`);
  });
});

describe("retention", () => {
  test("deleteFinished deletes terminal rows older than the cutoff, at most `limit` per call", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const old = Array.from({ length: 5 }, () => job());
    const recent = Array.from({ length: 2 }, () => job());
    const running = Array.from({ length: 2 }, () => job());
    ok(await s!.claim([...old, ...recent, ...running].map((j) => claimItem(j, "w"))));
    ok(await s!.complete([...old, ...recent].map((j) => result(j.id, "w"))));
    await p!.query("UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = ANY($1)", [old.map((j) => j.id)]);
    await p!.query("UPDATE jobs SET created_at = now() - interval '2 hours' WHERE id = ANY($1)", [running.map((j) => j.id)]);
    assert.equal(await s!.deleteFinished({ olderThanMs: 30 * 24 * 3_600_000, limit: 10 }), 0, "30 days fits the parameter");
    assert.equal(await s!.deleteFinished({ olderThanMs: 3_600_000, limit: 3 }), 3);
    assert.equal(await s!.deleteFinished({ olderThanMs: 3_600_000, limit: 3 }), 2);
    assert.equal(await s!.deleteFinished({ olderThanMs: 3_600_000, limit: 3 }), 0);
    const left = (await s!.getMany([...old, ...recent, ...running].map((j) => j.id))).map((r) => r.id).sort();
    assert.deepEqual(left, [...recent, ...running].map((j) => j.id).sort());
  });

  test("tableSizes reports the table and its indexes", async () => {
    const { stores: [s] } = await schemas.setup();
    const empty = await s!.tableSizes();
    ok(await s!.claim(Array.from({ length: 300 }, () => claimItem(job(), "w"))));
    const full = await s!.tableSizes();
    assert.ok(full.tableBytes > empty.tableBytes, JSON.stringify({ empty, full }));
    assert.ok(full.indexBytes > empty.indexBytes, JSON.stringify({ empty, full }));
  });

  test("schema: no index on a hot-path column, partial indexes for markLost and retention, fillfactor 80", async () => {
    const { pools: [p] } = await schemas.setup();
    const idx = (await p!.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'jobs' ORDER BY 1")).rows as { indexname: string; indexdef: string }[];
    // jobs_batch_idx (0007): a batch's progress in one scan; on the id, which no update changes, so HOT stays.
    assert.deepEqual(idx.map((i) => i.indexname), ["jobs_batch_idx", "jobs_finished_idx", "jobs_pkey", "jobs_tenant_created_idx", "jobs_unfinished_receive_idx"]);
    for (const i of idx) assert.doesNotMatch(i.indexdef, /updated_at|lease_expires_at|provider_calls/);
    const opts = (await p!.query("SELECT reloptions FROM pg_class WHERE oid = 'jobs'::regclass")).rows[0].reloptions as string[];
    assert.deepEqual(opts, ["fillfactor=80"]);
  });
});
