/**
 * Delivery counts and markLost: a job that kills its worker on every delivery never gets an outcome from a worker,
 * and its message ends in the DLQ; markLost records it `dead` once its last delivery's holder is gone.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import { claimItem, job, ok, result, StoreSchemas } from "./support/store-schema.ts";

const schemas = new StoreSchemas();
after(() => schemas.dropAll());

const receiveCount = async (p: pg.Pool, id: string): Promise<number> =>
  (await p.query("SELECT receive_count FROM jobs WHERE id = $1", [id])).rows[0].receive_count as number;
/** Time passing without sleeping: the lease ran out (or the release happened) `ms` ago. */
const ago = (p: pg.Pool, ids: string[], ms: number) =>
  p.query(
    `UPDATE jobs SET lease_expires_at = CASE WHEN lease_owner IS NULL THEN NULL ELSE now() - $2 * interval '1 ms' END,
                     updated_at = now() - $2 * interval '1 ms' WHERE id = ANY($1)`,
    [ids, ms],
  );

describe("receive counts", () => {
  test("a claim stores the highest receive count seen, including a delivery that found the job leased", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const j = job();
    ok(await s!.claim([claimItem(j, "w1", 60_000, 2)]));
    assert.equal(await receiveCount(p!, j.id), 2);
    assert.equal(ok(await s!.claim([claimItem(j, "w2", 60_000, 4)]))[0]?.kind, "leased");
    assert.equal(await receiveCount(p!, j.id), 4);
    ok(await s!.release([{ id: j.id, workerId: "w1", code: "P", message: "retry" }]));
    assert.equal(ok(await s!.claim([claimItem(j, "w3", 60_000, 3)]))[0]?.kind, "claimed");
    assert.equal(await receiveCount(p!, j.id), 4, "a stale count never lowers it");
  });
});

describe("markLost", () => {
  test("marks dead exactly the unfinished jobs at their last delivery whose holder is gone past the grace", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const [lost, released, live, early, young, done] = Array.from({ length: 6 }, () => job());
    ok(await s!.claim([lost!, released!, live!, young!, done!].map((j) => claimItem(j, "w", 60_000, 3))));
    ok(await s!.claim([claimItem(early!, "w", 60_000, 2)]));
    ok(await s!.release([{ id: released!.id, workerId: "w", code: "P", message: "retry" }]));
    assert.deepEqual(await s!.complete([result(done!.id, "w")]), ["written"]);
    await ago(p!, [lost!.id, released!.id, early!.id, done!.id], 120_000);
    await ago(p!, [young!.id], 1_000);

    const marked = await s!.markLost({ maxReceiveCount: 3, graceMs: 60_000, limit: 100 });
    assert.deepEqual(marked.map((r) => r.id).sort(), [lost!.id, released!.id].sort());
    for (const r of marked) {
      assert.equal(r.status, "dead");
      assert.equal(r.error?.code, "WORKER_LOST");
      assert.match(r.error?.message ?? "", /last delivery \(3 of 3\).*DLQ/);
      assert.equal(r.resultWrites, 1);
      assert.ok(r.finishedAt instanceof Date);
    }
    const rest = new Map((await s!.getMany([live!.id, early!.id, young!.id, done!.id])).map((r) => [r.id, r.status]));
    assert.deepEqual([rest.get(live!.id), rest.get(early!.id), rest.get(young!.id), rest.get(done!.id)], ["running", "running", "running", "succeeded"]);
    assert.deepEqual(await s!.markLost({ maxReceiveCount: 3, graceMs: 60_000, limit: 100 }), [], "nothing is marked twice");
  });

  test("many callers at once: each row marked once, at most `limit` per call", async () => {
    const { stores, pools: [p] } = await schemas.setup(3);
    const jobs = Array.from({ length: 30 }, () => job());
    ok(await stores[0]!.claim(jobs.map((j) => claimItem(j, "w", 60_000, 5))));
    await ago(p!, jobs.map((j) => j.id), 120_000);
    const seen: string[] = [];
    for (let round = 0; seen.length < jobs.length && round < 20; round++) {
      const calls = await Promise.all(stores.map((s) => s.markLost({ maxReceiveCount: 5, graceMs: 1_000, limit: 4 })));
      for (const marked of calls) {
        assert.ok(marked.length <= 4);
        seen.push(...marked.map((r) => r.id));
      }
    }
    assert.equal(new Set(seen).size, seen.length, "no row marked by two callers");
    assert.deepEqual([...seen].sort(), jobs.map((j) => j.id).sort());
    assert.ok((await stores[0]!.getMany(seen)).every((r) => r.resultWrites === 1 && r.status === "dead"));
  });

  test("a redriven (reopened) job counts its deliveries afresh and is not marked lost", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const j = job();
    ok(await s!.claim([claimItem(j, "w", 60_000, 3)]));
    await ago(p!, [j.id], 120_000);
    assert.equal((await s!.markLost({ maxReceiveCount: 3, graceMs: 1_000, limit: 10 })).length, 1);
    assert.deepEqual(await s!.reopenDead([{ id: j.id, tenant: j.tenant }]), [j.id]);
    await ago(p!, [j.id], 120_000);
    assert.deepEqual(await s!.markLost({ maxReceiveCount: 3, graceMs: 1_000, limit: 10 }), []);
    assert.deepEqual(await s!.claim([claimItem(j, "w2", 60_000, 1)]), [{ kind: "claimed", attempts: 2, workerLosses: 0 }]);
  });
});

describe("worker losses", () => {
  test("a claim counts a loss only when it takes a running job over from another holder whose lease ran out", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const j = job();
    const losses = async (worker: string) => {
      const [out] = ok(await s!.claim([claimItem(j, worker, 60_000, 1)]));
      assert.equal(out?.kind, "claimed");
      return (out as { workerLosses: number }).workerLosses;
    };
    assert.equal(await losses("w1"), 0, "a new row");
    assert.equal(await losses("w1"), 0, "the same holder again (its own lease)");
    await ago(p!, [j.id], 1_000);
    assert.equal(await losses("w1"), 0, "the same holder after its lease ran out (a store outage, not a death)");
    await ago(p!, [j.id], 1_000);
    assert.equal(await losses("w2"), 1, "w1 died holding it");
    ok(await s!.release([{ id: j.id, workerId: "w2", code: "PROVIDER_OVERLOADED", message: "503" }]));
    assert.equal(await losses("w3"), 1, "a release is not a loss");
    await ago(p!, [j.id], 1_000);
    assert.equal(await losses("w4"), 2, "w3 died holding it");
    assert.equal(ok(await s!.claim([claimItem(j, "w5", 60_000, 1)]))[0]?.kind, "leased", "a live lease is not taken, nor counted");
    await ago(p!, [j.id], 1_000);
    assert.equal(await losses("w5"), 3);
  });

  test("a redrive clears the losses with the dead verdict", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const j = job();
    ok(await s!.claim([claimItem(j, "w1", 60_000, 3)]));
    await ago(p!, [j.id], 120_000);
    assert.deepEqual(await s!.claim([claimItem(j, "w2", 60_000, 3)]), [{ kind: "claimed", attempts: 2, workerLosses: 1 }]);
    await ago(p!, [j.id], 120_000);
    assert.equal((await s!.markLost({ maxReceiveCount: 3, graceMs: 1_000, limit: 10 })).length, 1);
    assert.deepEqual(await s!.reopenDead([{ id: j.id, tenant: j.tenant }]), [j.id]);
    assert.deepEqual(await s!.claim([claimItem(j, "w3", 60_000, 1)]), [{ kind: "claimed", attempts: 3, workerLosses: 0 }]);
  });
});
