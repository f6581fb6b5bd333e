/**
 * The DLQ tool's redrive on the SQS emulator and real Postgres: a job is reopened exactly when its message is moved
 * back, across a DLQ larger than one receive (35 messages, receives of 10).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildJob, encodeJob, jobIdOf } from "../shared/contract.ts";
import type { ReceivedMessage } from "../shared/queue/sqs.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { queueFixture, stopEmulator, storeFixture, uniqueName, type QueueFixture, type StoreFixture } from "./support/env.ts";

const execFileAsync = promisify(execFile);
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

async function dlq(q: QueueFixture, databaseUrl: string | undefined, ...args: string[]): Promise<Run> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    QUEUE_URLS: q.queueUrl,
    SQS_ENDPOINT: q.endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "t",
    AWS_SECRET_ACCESS_KEY: "t",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
  };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", "scripts/dlq.ts", ...args], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `n` jobs recorded dead in Postgres, their messages in the DLQ (as SQS's redrive policy leaves them). */
async function deadLetters(n: number): Promise<{ q: QueueFixture; s: StoreFixture; ids: string[] }> {
  const q = await queueFixture();
  const s = await storeFixture();
  closers.push(() => s.close());
  const prefix = uniqueName("dead");
  const jobs = Array.from({ length: n }, (_, i) => buildJob({ id: `${prefix}-${String(i).padStart(2, "0")}`, tenant: "acme", prompt: `p${i}` }));
  await s.store.finish(jobs.map((job) => ({ id: job.id, status: "dead" as const, code: "PROVIDER_OVERLOADED", message: "gave up", tenant: job.tenant })));
  const { failed } = await q.queue.sendBatch(q.dlqUrl, jobs.map((job, i) => ({ id: String(i), body: encodeJob(job) })));
  assert.deepEqual(failed, []);
  return { q, s, ids: jobs.map((j) => j.id) };
}

/** Receives everything visible in a queue (and keeps it hidden): what a worker would now be given. */
async function drain(q: QueueFixture, url: string): Promise<ReceivedMessage[]> {
  const all: ReceivedMessage[] = [];
  for (;;) {
    const got = await q.queue.receive(url, { maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 300 });
    if (got.length === 0) return all;
    all.push(...got);
  }
}

async function statuses(s: StoreFixture, ids: string[]): Promise<Map<string, string>> {
  return new Map((await s.store.getMany(ids)).map((r) => [r.id, r.status]));
}

/** Every job whose message is back on the source queue is queued; every job whose message is still dead-lettered is dead. */
async function assertReopenedExactlyTheMoved(q: QueueFixture, s: StoreFixture, ids: string[]): Promise<{ moved: string[]; left: string[] }> {
  const moved = (await drain(q, q.queueUrl)).map((m) => jobIdOf(m.body)!).sort();
  const left = (await drain(q, q.dlqUrl)).map((m) => jobIdOf(m.body)!).sort();
  assert.deepEqual([...moved, ...left].sort(), [...ids].sort(), "every message is in exactly one queue");
  const status = await statuses(s, ids);
  for (const id of moved) assert.equal(status.get(id), "queued", `${id} was moved back, so it must be reopened`);
  for (const id of left) assert.equal(status.get(id), "dead", `${id} was not moved, so it must stay dead`);
  return { moved, left };
}

test("redrive refuses to run without a database (exit 2) and moves nothing", async () => {
  const { q } = await deadLetters(3);
  const run = await dlq(q, undefined, "redrive");
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /redrive needs DATABASE_URL/);
  assert.equal((await drain(q, q.dlqUrl)).length, 3);
  assert.equal((await drain(q, q.queueUrl)).length, 0);
});

test("redrive of a 35-message DLQ: every job moved is reopened, none is left dead", async () => {
  const { q, s, ids } = await deadLetters(35);
  const run = await dlq(q, schemaScopedUrl(s.url, s.schema), "redrive");
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /moved 35 message\(s\)/);
  assert.match(run.stdout, /reopened 35 job\(s\)/);
  const { moved } = await assertReopenedExactlyTheMoved(q, s, ids);
  assert.equal(moved.length, 35);
});

test("redrive --max 17: exactly the 17 moved are reopened; the 18 left in the DLQ stay dead", async () => {
  const { q, s, ids } = await deadLetters(35);
  const run = await dlq(q, schemaScopedUrl(s.url, s.schema), "redrive", "--max", "17");
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /moved 17 message\(s\)/);
  const { moved, left } = await assertReopenedExactlyTheMoved(q, s, ids);
  assert.equal(moved.length, 17);
  assert.equal(left.length, 18);
});

test("redrive --id: only the named jobs move and reopen, wherever they sit in the DLQ", async () => {
  const { q, s, ids } = await deadLetters(35);
  const wanted = [ids[0]!, ids[13]!, ids[27]!, ids[34]!];
  const run = await dlq(q, schemaScopedUrl(s.url, s.schema), "redrive", ...wanted.flatMap((id) => ["--id", id]));
  assert.equal(run.code, 0, run.stderr);
  const { moved } = await assertReopenedExactlyTheMoved(q, s, ids);
  assert.deepEqual(moved, [...wanted].sort());
});

test("a message without a recoverable id is moved as it is; a job whose row is not dead is moved but not counted reopened", async () => {
  const { q, s, ids } = await deadLetters(2);
  await s.store.finish([{ id: "done-1", status: "failed", code: "X", message: "already final", tenant: "acme" }]);
  const done = buildJob({ id: "done-1", tenant: "acme", prompt: "p" });
  await q.queue.sendBatch(q.dlqUrl, [
    { id: "a", body: "{not json at all" },
    { id: "b", body: encodeJob(done) },
  ]);
  const run = await dlq(q, schemaScopedUrl(s.url, s.schema), "redrive");
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /moved 4 message\(s\)/);
  assert.match(run.stdout, /reopened 2 job\(s\)/);
  const back = await drain(q, q.queueUrl);
  assert.deepEqual(back.map((m) => m.body).filter((b) => jobIdOf(b) === undefined), ["{not json at all"]);
  assert.equal((await s.store.get("done-1"))?.status, "failed");
  const status = await statuses(s, ids);
  for (const id of ids) assert.equal(status.get(id), "queued");
});

test("--max must be a positive integer (usage error, exit 2)", async () => {
  const q = await queueFixture();
  for (const bad of ["abc", "0", "2.5"]) {
    const run = await dlq(q, "postgres://postgres@127.0.0.1:1/x", "redrive", "--max", bad);
    assert.equal(run.code, 2, `${bad}: ${run.stderr}`);
    assert.match(run.stderr, /--max must be/);
  }
});
