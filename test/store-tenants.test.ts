/**
 * The first owner keeps the id: rows are keyed by id alone, and a message from another tenant (or a poison
 * message naming an existing id) must never take over, finish or reopen another tenant's job.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import { claimItem, job, ok, result, StoreSchemas } from "./support/store-schema.ts";

const schemas = new StoreSchemas();
after(() => schemas.dropAll());

const rowOf = async (p: pg.Pool, id: string) =>
  (await p.query("SELECT tenant, status, attempts, lease_owner, request->>'tenant' AS request_tenant, error_code, result_writes FROM jobs WHERE id = $1", [id])).rows[0];

describe("tenants", () => {
  test("a second tenant's claim of an id in use is a conflict and changes nothing, whatever the row's state", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const mine = job("shared-1", "acme");
    const theirs = job("shared-1", "globex");
    ok(await s!.claim([claimItem(mine, "wa")]));
    const running = await rowOf(p!, mine.id);
    assert.deepEqual(await s!.claim([claimItem(theirs, "wb")]), [{ kind: "conflict", owner: "acme" }]);
    assert.deepEqual(await rowOf(p!, mine.id), running);
    // Released (lease free), then terminal: still acme's.
    ok(await s!.release([{ id: mine.id, workerId: "wa", code: "P", message: "retry" }]));
    assert.deepEqual(await s!.claim([claimItem(theirs, "wb")]), [{ kind: "conflict", owner: "acme" }]);
    assert.equal((await rowOf(p!, mine.id)).status, "queued");
    ok(await s!.claim([claimItem(mine, "wa")]));
    assert.deepEqual(await s!.complete([result(mine.id, "wa")]), ["written"]);
    assert.deepEqual(await s!.claim([claimItem(theirs, "wb")]), [{ kind: "conflict", owner: "acme" }]);
    const rec = await s!.get(mine.id);
    assert.equal(rec?.tenant, "acme");
    assert.equal(rec?.output, "out-wa");
  });

  test("a poison message naming an existing job is a conflict and does not mark it failed", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const j = job();
    ok(await s!.claim([claimItem(j, "w")]));
    ok(await s!.release([{ id: j.id, workerId: "w", code: "P", message: "retry" }]));
    const before = await rowOf(p!, j.id);
    const out = await s!.finish([{ id: j.id, status: "dead", code: "JOB_INVALID", message: "invalid job", poison: true, request: '"garbage"' }]);
    assert.deepEqual(out, ["conflict"]);
    assert.deepEqual(await rowOf(p!, j.id), before);
    assert.equal(before.status, "queued");
  });

  test("finish from another tenant is a conflict; from the owner it is written", async () => {
    const { stores: [s] } = await schemas.setup();
    const j = job(undefined, "acme");
    ok(await s!.claim([claimItem(j, "w")]));
    assert.deepEqual(await s!.finish([{ id: j.id, status: "expired", code: "JOB_EXPIRED", message: "late", workerId: "w", tenant: "globex" }]), ["conflict"]);
    assert.equal((await s!.get(j.id))?.status, "running");
    assert.deepEqual(await s!.finish([{ id: j.id, status: "expired", code: "JOB_EXPIRED", message: "late", workerId: "w", tenant: "acme" }]), ["written"]);
  });

  test("a poison record owns its id too: a later valid job with that id conflicts (owner undefined)", async () => {
    const { stores: [s] } = await schemas.setup();
    assert.deepEqual(await s!.finish([{ id: "p-1", status: "dead", code: "JOB_INVALID", message: "x", poison: true }]), ["written"]);
    assert.deepEqual(await s!.claim([claimItem(job("p-1"), "w")]), [{ kind: "conflict", owner: undefined }]);
  });

  test("the same id from two tenants in one claim batch: the first claims, the second conflicts", async () => {
    const { stores: [s] } = await schemas.setup();
    const out = await s!.claim([claimItem(job("dup-1", "acme"), "w"), claimItem(job("dup-1", "globex"), "w")]);
    assert.deepEqual(out, [{ kind: "claimed", attempts: 1, workerLosses: 0 }, { kind: "conflict", owner: "acme" }]);
  });

  test("reopenDead reopens only the named tenant's rows; getForTenant returns only the tenant's", async () => {
    const { stores: [s] } = await schemas.setup();
    const a = job(undefined, "acme");
    const g = job(undefined, "globex");
    ok(await s!.claim([claimItem(a, "w"), claimItem(g, "w")]));
    ok(await s!.finish([a, g].map((j) => ({ id: j.id, status: "dead" as const, code: "D", message: "dlq", workerId: "w", tenant: j.tenant }))));
    assert.deepEqual(await s!.reopenDead([{ id: a.id, tenant: "globex" }, { id: g.id, tenant: "globex" }]), [g.id]);
    assert.equal((await s!.get(a.id))?.status, "dead");
    assert.equal((await s!.get(g.id))?.status, "queued");
    assert.deepEqual(await s!.reopenDead([{ id: a.id }]), [a.id]);
    assert.deepEqual((await s!.getForTenant("acme", [a.id, g.id, "absent"])).map((r) => r.id), [a.id]);
    assert.deepEqual(await s!.getForTenant("initech", [a.id, g.id]), []);
  });
});
