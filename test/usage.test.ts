/**
 * Per-job usage from the router lands in the record (cost, latency, every call), and the CLI totals it per tenant
 * and provider over a time range.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildJob } from "../shared/contract.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { storeFixture, type StoreFixture } from "./support/env.ts";

const execFileAsync = promisify(execFile);
const fixtures: StoreFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

async function succeed(s: StoreFixture, id: string, tenant: string, provider: string, costUsd?: number): Promise<void> {
  await s.store.claim([{ job: buildJob({ id, tenant, prompt: "p" }), workerId: "w", leaseMs: 60_000, messageId: `m-${id}`, receiveCount: 1 }]);
  const attempts = [{ provider: "vllm", ok: false, code: "PROVIDER_CONNECTION", latencyMs: 3 }, { provider, ok: true, latencyMs: 40 }];
  const [written] = await s.store.complete([{ id, workerId: "w", output: "a", finishReason: "stop", promptTokens: 10, completionTokens: 5, provider, model: "m", costUsd, latencyMs: 43.4, providerAttempts: attempts }]);
  assert.equal(written, "written");
}

test("the record keeps what the answer cost, how long it took and every provider call", async () => {
  const s = await storeFixture();
  fixtures.push(s);
  await succeed(s, "u-1", "acme", "gemini", 0.00012345);
  const r = await s.store.get("u-1");
  assert.equal(r?.costUsd, 0.00012345);
  assert.equal(r?.latencyMs, 43);
  assert.deepEqual(r?.providerAttempts?.map((a) => `${a.provider}:${a.ok}:${a.code ?? ""}`), ["vllm:false:PROVIDER_CONNECTION", "gemini:true:"]);
});

test("usage totals per tenant and provider over a range; the CLI prints them and refuses a bad range", async () => {
  const s = await storeFixture();
  fixtures.push(s);
  await succeed(s, "a-1", "acme", "vllm", 0);
  await succeed(s, "a-2", "acme", "gemini", 0.5);
  await succeed(s, "a-3", "acme", "gemini", 0.25);
  await succeed(s, "b-1", "beta", "ollama");
  const from = new Date(Date.now() - 60_000);
  const to = new Date(Date.now() + 60_000);
  const all = await s.store.usage({ from, to });
  assert.deepEqual(all.map((r) => `${r.tenant}/${r.provider}:${r.jobs}:${r.promptTokens}:${r.completionTokens}:${r.costUsd}`), [
    "acme/gemini:2:20:10:0.75",
    "acme/vllm:1:10:5:0",
    "beta/ollama:1:10:5:0",
  ]);
  assert.equal((await s.store.usage({ from: to, to: new Date(to.getTime() + 1000) })).length, 0, "nothing ended in a later range");
  const env = { PATH: process.env.PATH ?? "", DATABASE_URL: schemaScopedUrl(s.url, s.schema), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", "producer/cli.ts", "usage", "--from", from.toISOString(), "--to", to.toISOString(), "--tenant", "beta"], { env });
  assert.deepEqual(stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown), [{ tenant: "beta", provider: "ollama", jobs: 1, promptTokens: 10, completionTokens: 5, costUsd: 0 }]);
  await assert.rejects(execFileAsync(process.execPath, ["--import", "tsx", "producer/cli.ts", "usage", "--from", "yesterday", "--to", to.toISOString()], { env }), (err: { code?: number; stderr?: string }) => err.code === 2 && /ISO-8601/.test(err.stderr ?? ""));
});
