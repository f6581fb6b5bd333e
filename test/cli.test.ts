/** The producer CLI as an operator runs it: a child process, real Postgres and Redis, exit codes and messages. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import type { JobRecord } from "../shared/store/job-record.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTraceparent, TRACEPARENT } from "../shared/trace.ts";
import { queueFixture, REDIS_URL, stopEmulator, storeFixture } from "./support/env.ts";

const execFileAsync = promisify(execFile);
const DOWN_URL = "postgres://postgres@127.0.0.1:1/test";
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await stopEmulator();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(env: Record<string, string>, ...args: string[]): Promise<Run> {
  const base = { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", "producer/cli.ts", ...args], { env: { ...base, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The CLI reads Redis under the default prefix: ids are unique per run and removed afterwards. */
async function redisRecord(id: string): Promise<void> {
  const cache = new ResultsCache({ url: REDIS_URL, ttlSeconds: 120 });
  assert.ok(await cache.ready());
  const record: JobRecord = {
    id,
    tenant: "acme",
    status: "succeeded",
    output: "from redis",
    outputNulReplaced: 0,
    finishReason: "stop",
    usage: undefined,
    provider: "vllm",
    model: "m",
    attempts: 1,
    providerCalls: 1,
    resultWrites: 1,
    error: undefined,
    createdAt: new Date(),
    startedAt: undefined,
    finishedAt: new Date(),
  };
  await cache.putMany([record]);
  await cache.close();
}

const uid = (p: string) => `${p}-${randomBytes(5).toString("hex")}`;

test("numeric flags are checked: a usage error (exit 2), not a NaN from deep inside", async () => {
  for (const [flag, value] of [["--timeout-seconds", "abc"], ["--timeout-seconds", "0"], ["--timeout-seconds", ""], ["--unknown-after-seconds", "-1"], ["--unknown-after-seconds", "1e999"]]) {
    const run = await cli({ DATABASE_URL: DOWN_URL }, "wait", "some-id", `${flag}=${value}`);
    assert.equal(run.code, 2, `${flag}=${value}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`${flag} must be`));
    assert.match(run.stderr, /usage:/);
    assert.doesNotMatch(run.stderr, /NaN|out of range/);
  }
});

test("an unknown flag is a usage error too", async () => {
  const run = await cli({ DATABASE_URL: DOWN_URL }, "wait", "x", "--timout-seconds", "5");
  assert.equal(run.code, 2);
  assert.match(run.stderr, /timout-seconds/);
  assert.match(run.stderr, /usage:/);
});

test("wait names unknown ids promptly (exit 1) and still prints the known ones", async () => {
  const s = await storeFixture();
  closers.push(() => s.close());
  const failed = uid("cli-failed");
  const ghost = uid("cli-ghost");
  await s.store.finish([{ id: failed, status: "failed", code: "X", message: "boom", tenant: "acme" }]);
  // The timeout is far beyond the test's patience: only the unknown rule can end this wait in time.
  const run = await cli({ DATABASE_URL: schemaScopedUrl(s.url, s.schema) }, "wait", failed, ghost, "--unknown-after-seconds", "0", "--timeout-seconds", "3600");
  assert.equal(run.code, 1, run.stderr);
  const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; status: string });
  assert.deepEqual(lines.map((l) => [l.id, l.status]), [[failed, "failed"], [ghost, "unknown"]]);
  assert.match(run.stderr, new RegExp(`unknown id\\(s\\).*${ghost}`));
});

test("get answers from Redis when Postgres is down", async () => {
  const id = uid("cli-hot");
  await redisRecord(id);
  const run = await cli({ DATABASE_URL: DOWN_URL, REDIS_URL }, "get", id);
  assert.equal(run.code, 0, run.stderr);
  const record = JSON.parse(run.stdout) as JobRecord;
  assert.equal(record.id, id);
  assert.equal(record.output, "from redis");
});

test("get with Postgres down and no Redis record: a clear 'unreachable' error (exit 3), no connection string", async () => {
  const run = await cli({ DATABASE_URL: DOWN_URL, REDIS_URL }, "get", uid("cli-cold"));
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /job store \(Postgres\) is unreachable/);
  assert.ok(!run.stderr.includes("127.0.0.1:1") && !run.stderr.includes("postgres://"), run.stderr);
  assert.equal(run.stdout, "");
});

test("get: a missing job is exit 1, distinct from an unreachable store", async () => {
  const s = await storeFixture();
  closers.push(() => s.close());
  const run = await cli({ DATABASE_URL: schemaScopedUrl(s.url, s.schema) }, "get", uid("cli-none"));
  assert.equal(run.code, 1);
  assert.match(run.stderr, /no job with id/);
});

test("submit --traceparent: every message carries the caller's trace as its traceparent attribute; a malformed one is a usage error", async () => {
  const q = await queueFixture();
  const dir = await mkdtemp(join(tmpdir(), "cli-trace-"));
  closers.push(async () => {
    q.queue.close();
    await rm(dir, { recursive: true, force: true });
  });
  const file = join(dir, "jobs.jsonl");
  await writeFile(file, `${JSON.stringify({ tenant: "acme", prompt: "one", params: {} })}\n${JSON.stringify({ tenant: "acme", prompt: "two", params: {} })}\n`);
  const env = { SQS_ENDPOINT: q.endpoint, QUEUE_URLS: q.queueUrl, AWS_REGION: "us-east-1" };
  const bad = await cli(env, "submit", "--file", file, "--traceparent", "00-nope");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--traceparent must be a W3C traceparent/);
  const run = await cli(env, "submit", "--file", file, "--traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  assert.equal(run.code, 0, run.stderr);
  const got = await q.queue.receive(q.queueUrl, { maxMessages: 10, waitTimeSeconds: 1 });
  assert.equal(got.length, 2);
  for (const m of got) assert.equal(parseTraceparent(m.attributes?.[TRACEPARENT])?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
});
