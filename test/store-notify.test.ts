/**
 * Terminal writes announce their ids on the schema's done channel (LISTEN/NOTIFY) in the writing statement itself:
 * one notification per batch, split below Postgres's 8,000-byte payload limit; non-terminal writes stay silent.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { DONE_PAYLOAD_BYTES } from "../shared/store/jobs-sql.ts";
import { claimItem, job, ok, PG_URL, result, StoreSchemas } from "./support/store-schema.ts";
import { until } from "./support/env.ts";

const schemas = new StoreSchemas();
after(() => schemas.dropAll());

async function listen(channel: string): Promise<{ payloads: string[]; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const payloads: string[] = [];
  client.on("notification", (n) => {
    if (n.channel === channel) payloads.push(n.payload ?? "");
  });
  await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
  return { payloads, close: () => client.end() };
}

test("complete, finish and markLost notify their ids once per statement; claims and releases do not", async () => {
  const { stores, schema } = await schemas.setup();
  const store = stores[0]!;
  const channel = await store.doneChannel();
  assert.equal(channel, `jobs_done:${schema}`);
  const l = await listen(channel);
  try {
    const jobs = [job("n-1"), job("n-2"), job("n-3")];
    ok(await store.claim(jobs.map((j) => claimItem(j, "w1"))));
    ok(await store.release([{ id: "n-3", workerId: "w1", code: "X", message: "back" }]));
    ok(await store.complete([result("n-1", "w1"), result("n-2", "w1")]));
    await until(() => l.payloads.length === 1, "the completion's notification");
    assert.deepEqual(l.payloads, ["n-1 n-2"]);
    ok(await store.finish([{ id: "n-3", status: "failed", code: "BAD", message: "no", tenant: "acme" }]));
    await until(() => l.payloads.length === 2, "the failure's notification");
    assert.equal(l.payloads[1], "n-3");
    // A write that changes nothing (already terminal) announces nothing.
    assert.deepEqual(await store.complete([result("n-1", "w1")]), ["already_finished"]);
    ok(await store.claim([claimItem(job("n-4"), "w1", 1, 5)]));
    await new Promise((r) => setTimeout(r, 20)); // let the 1 ms lease run out
    const lost = await store.markLost({ maxReceiveCount: 5, graceMs: 0, limit: 10 });
    assert.deepEqual(lost.map((r) => r.id), ["n-4"]);
    await until(() => l.payloads.length === 3, "markLost's notification");
    assert.deepEqual(l.payloads, ["n-1 n-2", "n-3", "n-4"]);
  } finally {
    await l.close();
  }
});

test("a large batch is split into payloads under the limit, covering every id once", async () => {
  const { stores } = await schemas.setup();
  const store = stores[0]!;
  const l = await listen(await store.doneChannel());
  try {
    const ids = Array.from({ length: 200 }, (_, i) => `big-${String(i).padStart(3, "0")}-${"x".repeat(115)}`);
    ok(await store.claim(ids.map((id) => claimItem(job(id), "w1"))));
    ok(await store.complete(ids.map((id) => result(id, "w1"))));
    const expected = Math.ceil((ids.length * (ids[0]!.length + 1)) / DONE_PAYLOAD_BYTES);
    await until(() => l.payloads.join(" ").split(" ").length >= ids.length, "every id announced");
    assert.ok(l.payloads.length >= expected && l.payloads.length <= expected + 1, `${l.payloads.length} notifications`);
    for (const p of l.payloads) assert.ok(Buffer.byteLength(p) < 8000, `payload of ${Buffer.byteLength(p)} bytes`);
    assert.deepEqual(l.payloads.join(" ").split(" ").sort(), [...ids].sort());
  } finally {
    await l.close();
  }
});
