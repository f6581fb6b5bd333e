/** The CLI's commands through the Results API, as a pipeline holding only a key runs them: exit codes and output. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildJob } from "../shared/contract.ts";
import { apiFixture } from "./support/api.ts";
import { stopEmulator } from "./support/env.ts";

const execFileAsync = promisify(execFile);
after(() => stopEmulator());

async function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", "producer/cli.ts", ...args], { env: { ...base, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test("jobs get through the API: queued → exit 1 after its wait, succeeded → exit 0, another tenant's id → 404 exit 2, no key → usage", async () => {
  const api = await apiFixture();
  try {
    const { key } = await api.key("cli-tenant");
    const { key: otherKey } = await api.key("cli-other");
    const submitted = await api.request("/v1/jobs", { key, body: { prompt: "hello", params: { max_tokens: 4 } } });
    assert.equal(submitted.status, 202);
    const id = submitted.json.id as string;
    const env = { FLEET_API_URL: api.url, FLEET_API_KEY: key };
    const queued = await cli(env, "jobs", "get", id, "--wait", "1");
    assert.equal(queued.code, 1, queued.stderr);
    assert.equal(JSON.parse(queued.stdout).status, "queued");
    const job = buildJob({ id, tenant: "cli-tenant", prompt: "hello" });
    await api.s.store.claim([{ job, workerId: "w", leaseMs: 60_000, messageId: "m", receiveCount: 1 }]);
    await api.s.store.complete([{ id, workerId: "w", output: "hi", finishReason: "stop", promptTokens: 1, completionTokens: 1, provider: "vllm", model: "m" }]);
    const done = await cli(env, "jobs", "get", id, "--wait", "5");
    assert.equal(done.code, 0, done.stderr);
    assert.equal(JSON.parse(done.stdout).status, "succeeded");
    const foreign = await cli({ ...env, FLEET_API_KEY: otherKey }, "jobs", "get", id);
    assert.equal(foreign.code, 2);
    assert.match(foreign.stderr, /404/);
    const keyless = await cli({ FLEET_API_URL: api.url }, "jobs", "get", id);
    assert.equal(keyless.code, 2);
    assert.match(keyless.stderr, /FLEET_API_KEY is required/);
    assert.doesNotMatch(foreign.stderr + queued.stderr, new RegExp(key), "the key is never printed");
  } finally {
    await api.close();
  }
});
