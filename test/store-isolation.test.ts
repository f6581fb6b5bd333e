/**
 * Rows fail alone: Postgres refuses U+0000 in text (22021) and jsonb (22P05), and one refused value used to fail
 * the whole multi-row statement, i.e. every other job of its batch. Each batched method now isolates the row, and
 * the text it is given never carries a NUL to the server.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import { StoreError } from "../shared/errors.ts";
import type { Job } from "../shared/contract.ts";
import { claimItem, job, ok, result, StoreSchemas } from "./support/store-schema.ts";

const schemas = new StoreSchemas();
after(() => schemas.dropAll());

/** A job whose id the server refuses (ids are not rewritten: they are identities). */
const refusedJob = (): Job => ({ ...job(), id: `bad\u0000${Math.random()}` });

function assertRowError(r: unknown): void {
  assert.ok(r instanceof StoreError, `expected a StoreError, got ${String(r)}`);
  assert.equal(r.retryable, false);
}

describe("a row the server refuses fails alone", () => {
  test("claim: the other jobs of the batch are claimed", async () => {
    const { stores: [s] } = await schemas.setup();
    const good = Array.from({ length: 7 }, () => job());
    const bad = refusedJob();
    const items = [...good.slice(0, 3), bad, ...good.slice(3)].map((j) => claimItem(j, "w"));
    const out = await s!.claim(items);
    assertRowError(out[3]);
    assert.deepEqual(out.filter((_, i) => i !== 3), good.map(() => ({ kind: "claimed", attempts: 1, workerLosses: 0 })));
    assert.equal((await s!.getMany(good.map((j) => j.id))).length, 7);
  });

  test("complete, finish: only the refused item gets the error", async () => {
    const { stores: [s] } = await schemas.setup();
    const good = Array.from({ length: 5 }, () => job());
    ok(await s!.claim(good.map((j) => claimItem(j, "w"))));
    const bad = refusedJob();
    const completes = await s!.complete([result(good[0]!.id, "w"), result(bad.id, "w"), result(good[1]!.id, "w")]);
    assert.equal(completes[0], "written");
    assertRowError(completes[1]);
    assert.equal(completes[2], "written");
    const finishes = await s!.finish([
      { id: good[2]!.id, status: "failed", code: "X", message: "m", workerId: "w", tenant: "acme" },
      { id: bad.id, status: "dead", code: "JOB_INVALID", message: "poison", poison: true },
      { id: good[3]!.id, status: "failed", code: "X", message: "m", workerId: "w", tenant: "acme" },
    ]);
    assert.equal(finishes[0], "written");
    assertRowError(finishes[1]);
    assert.equal(finishes[2], "written");
  });

  test("release, recordProviderCall, extendLeases, reopenDead: the rest of the batch takes effect", async () => {
    const { stores: [s] } = await schemas.setup();
    const good = Array.from({ length: 4 }, () => job());
    ok(await s!.claim(good.map((j) => claimItem(j, "w"))));
    const ids = good.map((j) => j.id);
    const bad = refusedJob().id;

    const calls = await s!.recordProviderCall([ids[0]!, bad, ids[1]!]);
    assert.equal(calls[0], undefined);
    assertRowError(calls[1]);
    assert.equal(calls[2], undefined);
    assert.deepEqual((await s!.getMany(ids)).map((r) => r.providerCalls).sort(), [0, 0, 1, 1]);

    assert.deepEqual((await s!.extendLeases([bad, ...ids], "w", 600_000)).sort(), [...ids].sort());

    const released = await s!.release([
      { id: ids[0]!, workerId: "w", code: "P", message: "retry" },
      { id: bad, workerId: "w", code: "P", message: "retry" },
    ]);
    assert.equal(released[0], undefined);
    assertRowError(released[1]);
    assert.equal((await s!.get(ids[0]!))?.status, "queued");

    ok(await s!.finish(ids.slice(1).map((id) => ({ id, status: "dead" as const, code: "D", message: "dlq", workerId: "w", tenant: "acme" }))));
    assert.deepEqual((await s!.reopenDead([{ id: ids[1]! }, { id: bad }, { id: ids[2]! }])).sort(), [ids[1]!, ids[2]!].sort());
  });
});

describe("no NUL reaches Postgres", () => {
  test("an answer with U+0000 is stored with U+FFFD and the count; the rest of its batch is untouched", async () => {
    const { stores: [s] } = await schemas.setup();
    const [a, b] = [job(), job()];
    ok(await s!.claim([claimItem(a!, "w"), claimItem(b!, "w")]));
    const out = await s!.complete([
      { ...result(a!.id, "w", "byte\u0000fallback\u0000"), finishReason: "st\u0000op" },
      result(b!.id, "w", "clean"),
    ]);
    assert.deepEqual(out, ["written", "written"]);
    const ra = await s!.get(a!.id);
    assert.equal(ra?.output, "byte\uFFFDfallback\uFFFD");
    assert.equal(ra?.outputNulReplaced, 2);
    assert.equal(ra?.finishReason, "st\uFFFDop");
    const rb = await s!.get(b!.id);
    assert.equal(rb?.output, "clean");
    assert.equal(rb?.outputNulReplaced, 0);
  });

  test("a request with U+0000 is claimed and kept, NUL replaced", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    // The contract refuses NUL, so such a job only reaches the store past it (defence in depth): built, then altered.
    const j = { ...job(), prompt: "say \u0000 twice \u0000" };
    const k = { ...job(), metadata: { "k\u0000": "v\u0000" } };
    assert.deepEqual(await s!.claim([claimItem(j, "w"), claimItem(k, "w")]), [{ kind: "claimed", attempts: 1, workerLosses: 0 }, { kind: "claimed", attempts: 1, workerLosses: 0 }]);
    const rows = (await (p as pg.Pool).query("SELECT id, request FROM jobs")).rows as { id: string; request: Record<string, unknown> }[];
    const byId = new Map(rows.map((r) => [r.id, r.request]));
    assert.equal(byId.get(j.id)?.prompt, "say \uFFFD twice \uFFFD");
    assert.deepEqual(byId.get(k.id)?.metadata, { "k\uFFFD": "v\uFFFD" });
  });

  test("finish and release: messages and the poison body are stored with NUL replaced", async () => {
    const { stores: [s], pools: [p] } = await schemas.setup();
    const j = job();
    ok(await s!.claim([claimItem(j, "w")]));
    assert.deepEqual(await s!.release([{ id: j.id, workerId: "w", code: "P", message: "503 \u0000 body" }]), [undefined]);
    assert.equal((await s!.get(j.id))?.error?.message, "503 \uFFFD body");
    const out = await s!.finish([
      { id: "poison-json", status: "dead", code: "JOB_INVALID", message: "bad \u0000", poison: true, request: JSON.stringify({ id: "poison-json", prompt: "a\u0000b" }) },
      { id: "poison-raw", status: "dead", code: "JOB_INVALID", message: "not json", poison: true, request: "{not json \u0000" },
      { id: j.id, status: "failed", code: "F", message: "fatal \u0000", workerId: "w", tenant: "acme", request: JSON.stringify(j) },
    ]);
    assert.deepEqual(out, ["written", "written", "written"]);
    const rows = (await (p as pg.Pool).query("SELECT id, request, error_message FROM jobs ORDER BY id")).rows as { id: string; request: unknown; error_message: string }[];
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.deepEqual(byId.get("poison-json")?.request, { id: "poison-json", prompt: "a\uFFFDb" });
    assert.equal(byId.get("poison-json")?.error_message, "bad \uFFFD");
    assert.equal(byId.get("poison-raw")?.request, "{not json \uFFFD");
    assert.equal(byId.get(j.id)?.error_message, "fatal \uFFFD");
  });
});
