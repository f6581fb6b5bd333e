import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { buildJob, decodeJob, encodeJob, jobIdOf, jobJsonSchema, MAX_JOB_BYTES, tenantOf, type JobInput } from "../shared/contract.ts";
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

// ---- U+0000 (Postgres refuses it in text and jsonb, so the contract forbids it in every string) ----------------

const NUL = "\u0000";
const nulCases: [string, Record<string, unknown>, RegExp][] = [
  ["message content", { tenant: "acme", messages: [{ role: "user", content: `a${NUL}b` }] }, /messages\.0\.content: must not contain U\+0000/],
  ["prompt", { tenant: "acme", prompt: `${NUL}` }, /prompt: must not contain U\+0000/],
  ["model", { ...valid, model: `m${NUL}` }, /model: must not contain U\+0000/],
  ["stop string", { ...valid, params: { stop: ["ok", `x${NUL}`] } }, /params\.stop\.1: must not contain U\+0000/],
  ["metadata value", { ...valid, metadata: { k: `v${NUL}` } }, /metadata\.k: must not contain U\+0000/],
  ["metadata key", { ...valid, metadata: { [`k${NUL}`]: "v" } }, /metadata\.k\\u0000 \(key\): must not contain U\+0000/],
  ["tenant", { ...valid, tenant: `a${NUL}` }, /tenant/],
  ["id", { ...valid, id: `a${NUL}` }, /id must be/],
];
for (const [field, input, text] of nulCases) {
  test(`U+0000 refused at submit and at decode: ${field}`, () => {
    refused(() => buildJob(input as JobInput), "JOB_INVALID", text);
    const body = JSON.stringify({ v: 1, id: "nul-1", created_at: new Date().toISOString(), ...input });
    assert.throws(() => decodeJob(body), (e: unknown) => {
      assert.ok(e instanceof ContractError);
      assert.equal(e.code, "JOB_INVALID");
      assert.match(e.message, text);
      if (field !== "id") assert.equal(e.jobId, "nul-1");
      // The reason is stored in Postgres (text): it must not carry the NUL itself.
      assert.ok(!e.message.includes(NUL), "the message escapes the NUL");
      return true;
    });
  });
}

test("no refusal reason carries a raw U+0000, whatever the body (the reason is stored in a text column)", () => {
  const bodies = [
    JSON.stringify({ v: 1, id: "nul-2", tenant: "acme", prompt: "p", created_at: new Date().toISOString(), [`x${NUL}`]: 1 }),
    `{"id":"nul-3","prompt":"${NUL}"}`, // raw control character: not JSON
    `{"id":"nul-4",${NUL}}`,
    JSON.stringify({ v: 1, id: "nul-5", tenant: "acme", prompt: "p", created_at: new Date().toISOString(), risk: `x${NUL}` }),
  ];
  for (const body of bodies) {
    assert.throws(() => decodeJob(body), (e: unknown) => e instanceof ContractError && !e.message.includes(NUL));
  }
});

test("every problem is named when several strings carry U+0000", () => {
  refused(
    () => buildJob({ tenant: "acme", messages: [{ role: "user", content: NUL }, { role: "user", content: `x${NUL}` }] }),
    "JOB_INVALID",
    /messages\.0\.content: must not contain U\+0000.*messages\.1\.content: must not contain U\+0000/,
  );
});

test("unusual but legal text passes: emoji, tabs, other control characters, RTL marks, a body of exactly 256 KiB", () => {
  const odd = ["🦙 llama 👩‍👩‍👧", "tab\there\r\nnewline", "\u0001\u0002\u001f\u007f", "\u200f\u202eright-to-left\u202c", "\uFEFFbom", "\\u0000 as text"];
  for (const text of odd) {
    const job = buildJob({ tenant: "acme", prompt: text, model: text, params: { stop: [text] }, metadata: { [text]: text } });
    assert.deepEqual(decodeJob(encodeJob(job)), job);
  }
  const base = buildJob({ ...valid, id: "boundary-1", messages: [{ role: "user", content: "" + "x" }] });
  const fill = MAX_JOB_BYTES - Buffer.byteLength(encodeJob(base), "utf8") + 1;
  const exact = buildJob({ ...valid, id: "boundary-1", created_at: base.created_at, messages: [{ role: "user", content: "x".repeat(fill) }] });
  assert.equal(Buffer.byteLength(encodeJob(exact), "utf8"), MAX_JOB_BYTES);
  assert.deepEqual(decodeJob(encodeJob(exact)), exact);
  refused(() => buildJob({ ...valid, created_at: base.created_at, messages: [{ role: "user", content: "x".repeat(fill + 1) }] }), "JOB_TOO_LARGE", /limit/);
});

test("tenantOf reads a well-formed tenant from a raw body, and nothing else", () => {
  assert.equal(tenantOf(JSON.stringify({ id: "x", tenant: "acme" })), "acme");
  assert.equal(tenantOf(JSON.stringify({ tenant: "has space" })), undefined);
  assert.equal(tenantOf(JSON.stringify({ tenant: 7 })), undefined);
  assert.equal(tenantOf('{"tenant":"acme", broken'), undefined);
  assert.equal(tenantOf("null"), undefined);
});

// ---- The exported JSON Schema carries the rules decodeJob enforces -----------------------------------------------

type Schema = {
  oneOf?: { required: string[] }[];
  properties: Record<string, { pattern?: string; maxProperties?: number; propertyNames?: { pattern?: string }; additionalProperties?: { pattern?: string }; items?: { properties?: Record<string, { pattern?: string }>; pattern?: string }; properties?: Record<string, { items?: { pattern?: string } }> }>;
};
const schema = jobJsonSchema() as Schema;

/** The two object-level rules exactly as the schema states them (a reader of the schema would apply these). */
function violatesOneOf(body: Record<string, unknown>): boolean {
  const branches = schema.oneOf ?? [];
  return branches.filter((b) => b.required.every((k) => k in body)).length !== 1;
}
function violatesMaxProperties(body: Record<string, unknown>): boolean {
  const max = schema.properties.metadata?.maxProperties;
  return max !== undefined && Object.keys((body.metadata as object | undefined) ?? {}).length > max;
}

test("the schema states: exactly one of messages/prompt, at most 16 metadata keys", () => {
  assert.deepEqual(schema.oneOf, [{ required: ["messages"] }, { required: ["prompt"] }]);
  assert.equal(schema.properties.metadata?.maxProperties, 16);
});

test("every body decodeJob refuses for those two rules violates the schema's rule, and accepted ones satisfy it", () => {
  const head = { v: 1, id: "s-1", tenant: "acme", created_at: new Date().toISOString() };
  const chat = { messages: [{ role: "user", content: "hi" }] };
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
  const bodies: Record<string, unknown>[] = [
    { ...head },
    { ...head, ...chat, prompt: "p" },
    { ...head, ...chat },
    { ...head, prompt: "p" },
    { ...head, prompt: "p", metadata: keys(0) },
    { ...head, prompt: "p", metadata: keys(16) },
    { ...head, prompt: "p", metadata: keys(17) },
    { ...head, ...chat, metadata: keys(40) },
  ];
  for (const body of bodies) {
    let reason: string | undefined;
    try {
      decodeJob(JSON.stringify(body));
    } catch (e) {
      reason = (e as ContractError).message;
    }
    const label = JSON.stringify(Object.keys(body)) + ` metadata=${Object.keys((body.metadata as object) ?? {}).length}`;
    assert.equal(/exactly one of/.test(reason ?? ""), violatesOneOf(body), `oneOf agrees for ${label}`);
    assert.equal(/16 metadata/.test(reason ?? ""), violatesMaxProperties(body), `maxProperties agrees for ${label}`);
  }
});

test("the schema forbids U+0000 in every free-text string, and its pattern accepts everything else", () => {
  const p = schema.properties;
  const patterns = {
    model: p.model?.pattern,
    prompt: p.prompt?.pattern,
    content: p.messages?.items?.properties?.content?.pattern,
    stop: p.params?.properties?.stop?.items?.pattern,
    metadataKey: p.metadata?.propertyNames?.pattern,
    metadataValue: p.metadata?.additionalProperties?.pattern,
  };
  for (const [field, pattern] of Object.entries(patterns)) {
    assert.ok(pattern !== undefined, `${field} has a pattern`);
    const re = new RegExp(pattern, "u");
    assert.ok(!re.test(`a${NUL}b`), `${field} refuses U+0000`);
    for (const ok of ["🦙", "\t\u0001", "\u200f", ""]) assert.ok(re.test(ok), `${field} accepts ${JSON.stringify(ok)}`);
  }
  // id and tenant: their own patterns already exclude it.
  for (const field of ["id", "tenant"]) assert.ok(!new RegExp(p[field]!.pattern!, "u").test(`a${NUL}`), `${field} refuses U+0000`);
});
