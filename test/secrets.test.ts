/**
 * SecretResolver over the real AWS SDK client against the local Secrets Manager stand-in: ARNs resolved (one call
 * per secret), #jsonKey fields, plain values passed through, rotation seen on the interval and after an auth
 * failure (rate-limited), clear errors, and no secret value in any log line or error.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { pino, type Logger } from "pino";
import { embeddedBlocker, resolveDatabase } from "../scripts/local/database.ts";
import { startSecretsManager, type LocalSecretsManager } from "../scripts/local/secrets-manager.ts";
import { loadConfig } from "../shared/config.ts";
import type { StoreError } from "../shared/errors.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool, schemaScopedUrl } from "../shared/store/pool.ts";
import { SecretError, SecretResolver, parseSecretRef, type SecretResolverOptions, type SecretValue } from "../shared/secrets.ts";
import { PG_URL, queueFixture, stopEmulator, storeFixture, uniqueName, until } from "./support/env.ts";

let sm: LocalSecretsManager;
const resolvers: SecretResolver[] = [];

before(async () => {
  sm = await startSecretsManager();
});
after(async () => {
  for (const r of resolvers) r.close();
  await sm.close();
  await stopEmulator();
});

/** A pino logger whose lines are kept, at trace level so every line the resolver could write is seen. */
function capturingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: "trace" }, { write: (line: string) => void lines.push(line) }), lines };
}

function resolver(o: SecretResolverOptions = {}): SecretResolver {
  const r = new SecretResolver({ endpoint: sm.endpoint, ...o });
  resolvers.push(r);
  return r;
}

function secretName(): string {
  return `fleet/${uniqueName("s").replace(/_/g, "-")}`;
}

/** The next value `holder` changes to. */
function nextChange(holder: SecretValue): Promise<string> {
  return new Promise((resolve) => {
    const off = holder.onChange((value) => {
      off();
      resolve(value);
    });
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected a rejection");
}

test("an ARN resolves to the secret's value, full or partial ARN; a plain value passes through; one call per secret", async () => {
  const name = secretName();
  const arn = sm.put(name, "key-one");
  const partial = arn.replace(/-[A-Za-z0-9]{6}$/, "");
  const r = resolver();
  const s = await r.resolveAll({ FULL: arn, PARTIAL: partial, AGAIN: arn, PLAIN: "not-an-arn", ABSENT: undefined });
  assert.equal(s.FULL?.current(), "key-one");
  assert.equal(s.PARTIAL?.current(), "key-one");
  assert.equal(s.AGAIN?.current(), "key-one");
  assert.equal(s.PLAIN?.current(), "not-an-arn");
  assert.equal(s.ABSENT, undefined);
  // FULL and AGAIN are one secret; PARTIAL is asked for by another SecretId.
  assert.equal(sm.calls(name), 2);
  assert.equal(await s.PLAIN!.refresh(), false, "a plain value never refreshes");
});

test("#jsonKey picks a field of a JSON secret; a missing field or a non-JSON secret is SECRET_MALFORMED naming the key", async () => {
  const name = secretName();
  const arn = sm.put(name, JSON.stringify({ username: "fleet", password: "pw-json-1", port: 5432 }));
  const s = await resolver().resolveAll({ USER: `${arn}#username`, PASSWORD: `${arn}#password`, PORT: `${arn}#port` });
  assert.deepEqual([s.USER?.current(), s.PASSWORD?.current(), s.PORT?.current()], ["fleet", "pw-json-1", "5432"]);
  assert.equal(sm.calls(name), 1, "three fields, one call");

  const missing = await rejection(resolver().resolveAll({ X: `${arn}#nope` }));
  assert.ok(missing instanceof SecretError);
  assert.equal(missing.code, "SECRET_MALFORMED");
  assert.match(missing.message, new RegExp(`${name}.*"nope"`));

  const plainName = secretName();
  const plainArn = sm.put(plainName, "plain-text-secret");
  const notJson = await rejection(resolver().resolveAll({ X: `${plainArn}#password` }));
  assert.equal((notJson as SecretError).code, "SECRET_MALFORMED");
  assert.doesNotMatch(`${notJson.message}\n${notJson.stack}`, /plain-text-secret/);
});

test("the refresh interval picks up a rotation, tells listeners and logs it by name", async () => {
  const name = secretName();
  const arn = sm.put(name, "before-rotation");
  const { log, lines } = capturingLog();
  const s = await resolver({ refreshIntervalMs: 20, minRefreshSpacingMs: 0, log }).resolveAll({ KEY: arn });
  const changed = nextChange(s.KEY!);
  sm.put(name, "after-rotation");
  assert.equal(await changed, "after-rotation");
  assert.equal(s.KEY!.current(), "after-rotation");
  await until(() => lines.some((l) => l.includes("secret rotated") && l.includes(name)), "rotation logged");
});

test("refresh after an auth failure: a storm of calls makes one GetSecretValue; the next comes only after the spacing", async () => {
  const name = secretName();
  const arn = sm.put(name, "old-key");
  let clock = 0;
  const r = resolver({ minRefreshSpacingMs: 1_000, now: () => clock });
  const s = await r.resolveAll({ VLLM_API_KEY: arn });
  assert.equal(sm.calls(name), 1);

  sm.put(name, "new-key");
  assert.equal(await r.refresh("VLLM_API_KEY"), false, "within the spacing of the start fetch: no call");
  assert.equal(sm.calls(name), 1);

  clock = 1_000;
  const storm = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? r.refresh("VLLM_API_KEY") : s.VLLM_API_KEY!.refresh())));
  assert.equal(sm.calls(name), 2, "fifty 401s, one call");
  assert.ok(storm.every((changed) => changed), "every caller learns the key changed");
  assert.equal(s.VLLM_API_KEY!.current(), "new-key");

  clock = 1_999;
  assert.equal(await r.refresh("VLLM_API_KEY"), false);
  assert.equal(sm.calls(name), 2);
  clock = 2_000;
  assert.equal(await r.refresh("VLLM_API_KEY"), false, "fetched again, unchanged");
  assert.equal(sm.calls(name), 3);
  assert.equal(await r.refresh("UNKNOWN"), false);
});

test("an unknown secret: SecretError naming the secret and ResourceNotFoundException; every failing secret named at once", async () => {
  const missing = secretName();
  const other = secretName();
  const arn = (n: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${n}`;
  const one = await rejection(resolver().resolveAll({ DATABASE_PASSWORD: arn(missing), PLAIN: "x" }));
  assert.ok(one instanceof SecretError);
  assert.equal(one.code, "SECRET_NOT_FOUND");
  assert.equal(one.awsCode, "ResourceNotFoundException");
  assert.equal(one.retryable, false);
  assert.equal(one.message, `secret ${missing}: ResourceNotFoundException`);
  assert.doesNotMatch(one.message, /123456789012/, "the account is not needed to find the problem");

  const two = await rejection(resolver().resolveAll({ A: arn(missing), B: arn(other) }));
  assert.match(two.message, new RegExp(`${missing}: ResourceNotFoundException`));
  assert.match(two.message, new RegExp(`${other}: ResourceNotFoundException`));
});

test("a value shaped like an ARN that does not parse is refused, not sent as the key", async () => {
  assert.equal(parseSecretRef("sk-plain-value"), undefined);
  assert.deepEqual(parseSecretRef("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/main-AbCdEf#password"), {
    secretId: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/main-AbCdEf",
    region: "eu-west-1",
    name: "db/main-AbCdEf",
    jsonKey: "password",
  });
  const err = await rejection(resolver().resolveAll({ VLLM_API_KEY: "arn:aws:secretsmanager:us-east-1:secret:no-account" }));
  assert.equal((err as SecretError).code, "SECRET_MALFORMED");
  assert.match(err.message, /^VLLM_API_KEY: not a Secrets Manager ARN/);
});

test("a failed refresh keeps the current value and logs the name and code", async () => {
  const name = secretName();
  const arn = sm.put(name, "kept-value");
  let clock = 0;
  const { log, lines } = capturingLog();
  const r = resolver({ minRefreshSpacingMs: 1, now: () => clock, log });
  const s = await r.resolveAll({ KEY: arn });
  sm.delete(name);
  clock = 10;
  assert.equal(await r.refresh("KEY"), false);
  assert.equal(s.KEY!.current(), "kept-value");
  const warn = lines.find((l) => l.includes("secret refresh failed"));
  assert.ok(warn, lines.join(""));
  assert.equal(JSON.parse(warn).secret, arn.slice(arn.indexOf(":secret:") + 8), "the name as the ARN gives it");
  assert.equal(JSON.parse(warn).code, "ResourceNotFoundException");
});

test("an abort cuts the start; close() stops refreshing", async () => {
  const name = secretName();
  const arn = sm.put(name, "v");
  const aborted = await rejection(resolver().resolveAll({ KEY: arn }, AbortSignal.abort()));
  assert.equal(aborted.name, "AbortError");

  let clock = 0;
  const r = resolver({ minRefreshSpacingMs: 1, now: () => clock });
  await r.resolveAll({ KEY: arn });
  const before = sm.calls(name);
  r.close();
  r.close();
  clock = 10;
  assert.equal(await r.refresh("KEY"), false);
  assert.equal(sm.calls(name), before);
});

test("no secret value appears in any log line, error message or stack", async () => {
  const values = ["s3cr3t-start-value", "s3cr3t-rotated-value", "s3cr3t-json-value", "s3cr3t-bad-json"];
  const name = secretName();
  const jsonName = secretName();
  const arn = sm.put(name, values[0]!);
  const jsonArn = sm.put(jsonName, JSON.stringify({ password: values[2] }));
  let clock = 0;
  const { log, lines } = capturingLog();
  const r = resolver({ minRefreshSpacingMs: 1, refreshIntervalMs: 20, now: () => clock, log });
  const errors: Error[] = [];

  const s = await r.resolveAll({ KEY: arn, DB: `${jsonArn}#password` });
  // A listener that throws with the value in its message: only the fact is logged.
  s.KEY!.onChange((value) => {
    throw new Error(`listener saw ${value}`);
  });
  const rotated = nextChange(s.KEY!);
  clock += 10;
  sm.put(name, values[1]!);
  await rotated;
  await until(() => lines.some((l) => l.includes("listener of a secret rotation threw")), "listener failure logged");
  // A rotation that breaks the JSON: the refresh fails, the old field is kept.
  sm.put(jsonName, `{ not json ${values[3]}`);
  clock += 10;
  assert.equal(await r.refresh("DB"), false);
  assert.equal(s.DB!.current(), values[2]);
  errors.push(await rejection(resolver().resolveAll({ DB: `${jsonArn}#password` })));
  sm.put(jsonName, JSON.stringify({ user: values[3] }));
  errors.push(await rejection(resolver().resolveAll({ DB: `${jsonArn}#password` })));
  sm.delete(name);
  clock += 10;
  await r.refresh("KEY");

  assert.ok(lines.length >= 3, `the scenario logged: ${lines.join("")}`);
  assert.equal(errors.length, 2);
  const seen = [...lines, ...errors.flatMap((e) => [e.message, String(e.stack), JSON.stringify(e)])].join("\n");
  for (const value of values) assert.ok(!seen.includes(value), `${value} leaked:\n${seen}`);
});

test("config: secrets refresh every 5 minutes by default; a password in both DATABASE_URL and DATABASE_PASSWORD is refused without echoing either", () => {
  const c = loadConfig({ DATABASE_PASSWORD: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db#password", GEMINI_API_KEY: "g" });
  assert.deepEqual(c.secrets, { endpoint: undefined, refreshIntervalMs: 300_000 });
  assert.equal(c.store.password, "arn:aws:secretsmanager:us-east-1:123456789012:secret:db#password");
  assert.equal(c.providers.gemini?.apiKey, "g");
  assert.throws(
    () => loadConfig({ DATABASE_URL: "postgres://fleet:url-pw-value@db:5432/fleet", DATABASE_PASSWORD: "other-pw-value" }),
    (err: Error) => /DATABASE_PASSWORD/.test(err.message) && !/pw-value/.test(err.message),
  );
});

// The test server trusts every local connection, so a password is only checked by an embedded server (password auth).
const blocked = embeddedBlocker(tmpdir());

test("a rotated database password reaches the pool's next connection after a refresh", { skip: blocked }, async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "fleet-secrets-db-"));
  /** Nothing listens on port 1: forces the embedded server even though the local test server is up. */
  const db = await resolveDatabase({ dataDir, localUrl: "postgres://postgres@127.0.0.1:1/test", log: () => undefined });
  const admin = new pg.Client({ connectionString: db.url });
  let pool: pg.Pool | undefined;
  try {
    await admin.connect();
    const role = uniqueName("rot");
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-first'`);
    const name = secretName();
    const arn = sm.put(name, JSON.stringify({ username: role, password: "pw-first" }));
    let clock = 0;
    const s = await resolver({ minRefreshSpacingMs: 1, now: () => clock }).resolveAll({ DATABASE_PASSWORD: `${arn}#password` });
    const url = new URL(db.url);
    url.username = role;
    url.password = "";
    const password = s.DATABASE_PASSWORD!;
    pool = await createPool({ url: url.toString(), poolSize: 4, password: () => password.current() });
    const held = await pool.connect();
    try {
      assert.equal((await held.query("SELECT current_user AS u")).rows[0].u, role);
      // Rotation (what a Secrets Manager rotation Lambda does): the database first, then the secret.
      await admin.query(`ALTER ROLE ${role} PASSWORD 'pw-second'`);
      sm.put(name, JSON.stringify({ username: role, password: "pw-second" }));
      // `held` keeps its connection, so every query below opens a new one.
      await assert.rejects(pool.query("SELECT 1"), (err: Error & { code?: string }) => err.code === "28P01", "the old password is refused");
      // What the worker wires: the store tells of a refused password, the secret is fetched again, and the refusal is
      // the store being unavailable for now (writes retried), never the job's fault.
      clock = 10;
      const refreshes: Promise<boolean>[] = [];
      const store = new JobStore(pool, () => void refreshes.push(password.refresh()));
      await assert.rejects(store.getMany(["any"]), (err: StoreError) => err.code === "STORE_UNAVAILABLE" && err.retryable);
      assert.equal(refreshes.length, 1);
      assert.equal(await refreshes[0], true, "the rotated password was fetched");
      assert.equal((await pool.query("SELECT current_user AS u")).rows[0].u, role, "a new connection uses the rotated password");
      assert.equal((await held.query("SELECT 1 AS one")).rows[0].one, 1, "an open connection is not disturbed");
    } finally {
      held.release();
    }
  } finally {
    await pool?.end();
    await admin.end().catch(() => undefined);
    await db.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

const WORKER_MAIN = new URL("../worker/main.ts", import.meta.url).pathname;

/** worker/main.ts until it says ready (then SIGTERM) or exits; killed after 60 s so a hang fails the test. */
function runWorker(env: Record<string, string>): Promise<{ ready: boolean; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER_MAIN], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "1", ...env },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  let ready = false;
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  child.on("message", (m: { type?: string }) => {
    if (m.type !== "ready") return;
    ready = true;
    child.kill("SIGTERM");
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ ready, code, stderr });
    }),
  );
}

test("the worker resolves DATABASE_PASSWORD and VLLM_API_KEY ARNs at start, one call each, and never prints them", async () => {
  const q = await queueFixture();
  const s = await storeFixture();
  try {
    const dbName = secretName();
    const keyName = secretName();
    const dbArn = sm.put(dbName, JSON.stringify({ password: "db-pw-never-printed" }));
    const keyArn = sm.put(keyName, "vllm-key-never-printed");
    const { ready, code, stderr } = await runWorker({
      SQS_ENDPOINT: q.endpoint,
      QUEUE_URLS: q.queueUrl,
      SECRETS_ENDPOINT: sm.endpoint,
      // The test server trusts local connections: this shows the password path is wired, not that it is checked.
      DATABASE_URL: schemaScopedUrl(PG_URL, s.schema),
      DATABASE_PASSWORD: `${dbArn}#password`,
      VLLM_API_KEY: keyArn,
      ADAPTIVE_CONCURRENCY: "false",
      LOG_LEVEL: "trace",
    });
    assert.ok(ready, stderr);
    assert.equal(code, 0, stderr);
    assert.deepEqual([sm.calls(dbName), sm.calls(keyName)], [1, 1]);
    assert.doesNotMatch(stderr, /never-printed/);
  } finally {
    q.queue.close();
    await s.close();
  }
});

test("the worker does not start on a secret it cannot read: the error names the secret and AWS's code", async () => {
  const q = await queueFixture();
  try {
    const missing = secretName();
    const keyArn = sm.put(secretName(), "vllm-key-never-printed");
    const { ready, code, stderr } = await runWorker({
      SQS_ENDPOINT: q.endpoint,
      QUEUE_URLS: q.queueUrl,
      SECRETS_ENDPOINT: sm.endpoint,
      DATABASE_URL: PG_URL,
      DATABASE_PASSWORD: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${missing}#password`,
      VLLM_API_KEY: keyArn,
      ADAPTIVE_CONCURRENCY: "false",
      LOG_LEVEL: "trace",
    });
    assert.equal(ready, false);
    assert.notEqual(code, 0);
    assert.match(stderr, new RegExp(`secret ${missing}: ResourceNotFoundException`));
    assert.doesNotMatch(stderr, /never-printed/);
  } finally {
    q.queue.close();
  }
});
