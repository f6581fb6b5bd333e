/**
 * The fault suite's measuring instruments on their own: the audit's rules per job kind, and the Postgres figures
 * (a provoked deadlock is counted in a scratch database; the jobs table's sizes are read).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { audit, type FaultPlan, type JobRow } from "../scripts/fleet/audit.ts";
import { createScratchDatabase, tableSizes } from "../scripts/fleet/pg-stats.ts";
import { createPool } from "../shared/store/pool.ts";
import { migrate } from "../shared/store/migrate.ts";
import { PG_URL, uniqueName } from "./support/env.ts";

const row = (id: string, status: string, extra: Partial<JobRow> = {}): JobRow => ({
  id,
  status,
  tenant: "t1",
  result_writes: status === "queued" || status === "running" ? 0 : 1,
  error_code: null,
  output: "answer",
  content: "q",
  ...extra,
});

const plan = (p: Partial<FaultPlan>): FaultPlan => ({ plain: [], nulAnswers: [], crashes: [], nulPrompts: [], poisonWithId: [], noIdPoison: 0, conflicts: [], doubles: [], ...p });

test("audit: stuck is every job without a terminal record, lost those whose message is gone too", () => {
  const r = audit({
    plan: plan({ plain: ["a", "b", "c", "d"], noIdPoison: 2 }),
    rows: [row("a", "succeeded"), row("b", "running"), row("c", "succeeded", { result_writes: 2 })],
    dlq: [{ jobId: "b" }, { failureCode: "JOB_NOT_JSON" }],
    left: [],
    overlapping: [],
  });
  assert.deepEqual(r.stuckIds, ["b", "d"]);
  assert.deepEqual(r.lostIds, ["d"]);
  assert.equal(r.lost, 2, "d, and one no-id poison message not in the DLQ");
  assert.equal(r.duplicates, 1);
  assert.equal(r.failedPoison, 1);
  const twice = audit({ plan: plan({ noIdPoison: 1 }), rows: [], dlq: [{ failureCode: "JOB_NOT_JSON" }, { failureCode: "JOB_NOT_JSON" }], left: [], overlapping: [] });
  assert.deepEqual([twice.failedPoison, twice.lost, twice.extraPoisonCopies], [1, 0, 1], "a poison message dead-lettered twice counts once");
});

test("audit: each special kind ends only as expected", () => {
  const conflict = { id: "k", tenant: "t1", content: "q", expectedOutput: "answer" };
  const input = {
    plan: plan({ plain: ["k", "k2", "d1", "d2"], nulPrompts: ["n1", "n2"], nulAnswers: ["a1", "a2", "a3"], crashes: ["c1", "c2"], conflicts: [conflict, { ...conflict, id: "k2" }], doubles: ["d1", "d2"] }),
    rows: [
      row("n1", "failed", { error_code: "JOB_INVALID" }),
      row("n2", "failed", { error_code: "STORE_ERROR" }),
      row("a1", "succeeded", { output_nul_replaced: 1 }),
      row("a2", "succeeded", { output_nul_replaced: 0 }),
      row("a3", "succeeded"), // no such column yet: status alone
      row("c1", "dead", { error_code: "WORKER_LOST" }),
      row("c2", "dead", { error_code: "WORKER_LOST" }),
      row("k", "succeeded"),
      row("k2", "succeeded", { output: "the other tenant's answer" }),
      row("d1", "succeeded"),
      row("d2", "succeeded"),
    ],
    dlq: [{ jobId: "c1" }, { jobId: "k", tenant: "other", failureCode: "JOB_ID_CONFLICT" }, { jobId: "k2", tenant: "other", failureCode: "JOB_ID_CONFLICT" }],
    left: [],
    overlapping: ["d2"],
  };
  const r = audit(input);
  assert.equal(r.nulPromptsOk, 1);
  assert.equal(r.nulAnswersOk, 2);
  assert.equal(r.crashDeadOk, 1, "c2 is dead but its message never reached the DLQ");
  assert.equal(r.tenantConflictsOk, 1, "k2's record holds another answer");
  assert.equal(r.doubleSentOk, 1, "d2 had two calls at once");
  assert.equal(r.overlappingCalls, 1);
  // The other tenant's message in the DLQ does not stand in for the original's.
  assert.deepEqual(audit({ ...input, rows: input.rows.filter((x) => x.id !== "k") }).lostIds, ["k"]);
});

test("deadlocks are counted per scratch database; the jobs table's sizes are read", async () => {
  const scratch = await createScratchDatabase(PG_URL, uniqueName("faults_probe").toLowerCase().replace(/[^a-z0-9_]/g, "_"));
  assert.ok(scratch, "this role may create databases");
  let finished = false;
  try {
    const setup = new pg.Client({ connectionString: scratch.url });
    await setup.connect();
    await setup.query("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)");
    await setup.end();
    const [x, y] = [new pg.Client({ connectionString: scratch.url }), new pg.Client({ connectionString: scratch.url })];
    await Promise.all([x.connect(), y.connect()]);
    await x.query("BEGIN; UPDATE t SET id = id WHERE id = 1");
    await y.query("BEGIN; UPDATE t SET id = id WHERE id = 2");
    const outcomes = await Promise.allSettled([x.query("UPDATE t SET id = id WHERE id = 2"), y.query("UPDATE t SET id = id WHERE id = 1")]);
    assert.equal(outcomes.filter((o) => o.status === "rejected" && (o.reason as { code?: string }).code === "40P01").length, 1, "one side is the deadlock victim");
    await Promise.all([x.query("ROLLBACK"), y.query("ROLLBACK")]);
    await Promise.all([x.end(), y.end()]);

    const schema = uniqueName("sizes").toLowerCase().replace(/[^a-z0-9_]/g, "_");
    const pool = await createPool({ url: scratch.url, poolSize: 1, schema });
    await migrate(pool);
    const empty = await tableSizes(pool);
    await pool.query("INSERT INTO jobs (id, status) SELECT 'j' || g, 'queued' FROM generate_series(1, 2000) g");
    const filled = await tableSizes(pool);
    await pool.end();
    assert.ok(filled.heap > empty.heap && filled.indexes > empty.indexes, JSON.stringify({ empty, filled }));
    assert.ok(filled.total >= filled.heap + filled.indexes);

    finished = true;
    assert.equal(await scratch.finish(false), 1);
  } finally {
    if (!finished) await scratch.finish(false);
  }
});
