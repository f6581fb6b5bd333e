import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { buildJob, decodeJob, encodeJob, jobIdOf, jobJsonSchema, MAX_JOB_BYTES, type JobInput } from "../shared/contract.ts";
import { ContractError } from "../shared/errors.ts";

const valid: JobInput = { tenant: "acme", messages: [{ role: "user", content: "hello" }], params: { max_tokens: 16 } };

function refused(fn: () => unknown, code: string, text: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ContractError, `expected ContractError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, text);
    assert.equal(err.retryable, false);
    return true;
  });
}

test("a valid job gets a sortable generated id, version and timestamp, and round-trips", () => {
  const a = buildJob(valid);
  const b = buildJob(valid);
  assert.equal(a.v, 1);
  assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  assert.notEqual(a.id, b.id);
  assert.ok(a.id < b.id || a.created_at <= b.created_at, "ids sort by creation");
  assert.deepEqual(decodeJob(encodeJob(a)), a);
});

test("a client-supplied id is kept", () => {
  assert.equal(buildJob({ ...valid, id: "order-42:summary" }).id, "order-42:summary");
});

const malformed: [string, JobInput | Record<string, unknown>, RegExp][] = [
  ["no tenant", { messages: [{ role: "user", content: "x" }] }, /tenant/],
  ["both prompt and messages", { ...valid, prompt: "x" }, /exactly one of/],
  ["neither prompt nor messages", { tenant: "acme" }, /exactly one of/],
  ["empty message content", { tenant: "a", messages: [{ role: "user", content: "" }] }, /messages\.0\.content/],
  ["bad role", { tenant: "a", messages: [{ role: "robot", content: "x" }] }, /messages\.0\.role/],
  ["temperature out of range", { ...valid, params: { temperature: 3 } }, /params\.temperature/],
  ["max_tokens zero", { ...valid, params: { max_tokens: 0 } }, /params\.max_tokens/],
  ["unknown field", { ...valid, colour: "red" }, /colour/],
  ["unknown param", { ...valid, params: { beams: 4 } }, /beams/],
  ["bad id characters", { ...valid, id: "has space" }, /id must be/],
  ["bad risk", { ...valid, risk: "extreme" }, /risk/],
  ["too many metadata keys", { ...valid, metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, /16 metadata/],
  ["bad deadline", { ...valid, deadline: "tomorrow" }, /deadline/],
];
for (const [name, input, text] of malformed) {
  test(`refused at submit: ${name}`, () => refused(() => buildJob(input as JobInput), "JOB_INVALID", text));
}

test("an over-size job is refused with its size and the limit", () => {
  const big = { ...valid, messages: [{ role: "user" as const, content: "x".repeat(MAX_JOB_BYTES) }] };
  refused(() => buildJob(big), "JOB_TOO_LARGE", new RegExp(`limit is ${MAX_JOB_BYTES}`));
});

test("decode: not JSON, unknown version, invalid — each with its code and the id when recoverable", () => {
  refused(() => decodeJob("{not json"), "JOB_NOT_JSON", /not JSON/);
  assert.throws(() => decodeJob(JSON.stringify({ v: 9, id: "abc", tenant: "t" })), (e: ContractError) => e.code === "JOB_UNKNOWN_VERSION" && e.jobId === "abc");
  assert.throws(() => decodeJob(JSON.stringify({ v: 1, id: "abc", tenant: "t", created_at: new Date().toISOString() })), (e: ContractError) => e.code === "JOB_INVALID" && e.jobId === "abc");
  assert.throws(() => decodeJob(JSON.stringify([1, 2])), (e: ContractError) => e.code === "JOB_INVALID" && e.jobId === undefined);
  assert.throws(() => decodeJob(`{"id":"big-1","pad":"${"x".repeat(MAX_JOB_BYTES)}"}`), (e: ContractError) => e.code === "JOB_TOO_LARGE" && e.jobId === "big-1");
});

test("jobIdOf reads a well-formed id from a raw body, and nothing else", () => {
  assert.equal(jobIdOf(JSON.stringify({ id: "order-7", anything: 1 })), "order-7");
  assert.equal(jobIdOf(JSON.stringify({ id: "has space" })), undefined);
  assert.equal(jobIdOf('{"id":"x1", broken'), undefined);
  assert.equal(jobIdOf("[1,2]"), undefined);
});

test("the committed JSON Schema matches the zod contract", () => {
  const committed = JSON.parse(readFileSync(new URL("../shared/job.schema.json", import.meta.url), "utf8"));
  assert.deepEqual(committed, jobJsonSchema(), "run `make schema` after changing shared/contract.ts");
});
