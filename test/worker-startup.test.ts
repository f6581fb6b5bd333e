/**
 * The worker process refuses to start on a queue it cannot use: exit 2 and one line naming the queue and the
 * endpoint (no stack, no secret), instead of retrying forever after "worker started" or dying with a stack.
 * Runs the real entry point (worker/main.ts) against the SQS emulator.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { after, test } from "node:test";
import { PG_URL, queueFixture, stopEmulator, uniqueName } from "./support/env.ts";

after(() => stopEmulator());

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const SECRET = "vllm-key-that-must-not-leak";

/** Runs worker/main.ts until it exits (killed after `timeoutMs`: a worker that keeps running fails the test). */
function runWorker(env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", resolve(ROOT, "worker/main.ts")], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "1", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((res) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      res({ code, stderr });
    }),
  );
}

function baseEnv(endpoint: string): Record<string, string> {
  return { SQS_ENDPOINT: endpoint, AWS_REGION: "us-east-1", DATABASE_URL: PG_URL, VLLM_API_KEY: SECRET, ADAPTIVE_CONCURRENCY: "false", LOG_LEVEL: "info" };
}

function assertOneClearLine(stderr: string, queue: string, endpoint: string): void {
  const lines = stderr.split("\n").filter((l) => l.includes(queue));
  assert.equal(lines.length, 1, `one line names the queue:\n${stderr}`);
  assert.ok(lines[0]!.includes(endpoint), `the line names the endpoint: ${lines[0]}`);
  assert.match(lines[0]!, /QueueDoesNotExist/);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack");
  assert.doesNotMatch(stderr, new RegExp(SECRET));
  assert.doesNotMatch(stderr, /worker started/);
}

test("a QUEUE_URLS entry that does not exist: exit 2 naming the queue and endpoint, before the worker starts", async () => {
  const q = await queueFixture();
  const missing = uniqueName("missing").replace(/_/g, "-");
  const missingUrl = q.queueUrl.replace(/[^/]+$/, missing);
  try {
    const { code, stderr } = await runWorker({ ...baseEnv(q.endpoint), QUEUE_URLS: `${q.queueUrl},${missingUrl}` });
    assert.equal(code, 2, stderr);
    assertOneClearLine(stderr, missing, q.endpoint);
  } finally {
    q.queue.close();
  }
});

test("a QUEUE_NAME that does not exist: exit 2 naming the queue and endpoint", async () => {
  const q = await queueFixture();
  const missing = uniqueName("missing").replace(/_/g, "-");
  try {
    const { code, stderr } = await runWorker({ ...baseEnv(q.endpoint), QUEUE_NAME: missing });
    assert.equal(code, 2, stderr);
    assertOneClearLine(stderr, missing, q.endpoint);
  } finally {
    q.queue.close();
  }
});
