/**
 * `make serve` as a new user runs it: one JSON line when ready, a job submitted with the printed key comes back
 * succeeded through the printed API, and SIGTERM drains and stops everything with exit 0.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");

test("make serve: ready line, a job through the API with the printed key, SIGTERM exits 0", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", resolve(ROOT, "scripts/serve.ts")], {
    cwd: ROOT,
    env: { ...process.env, API_PORT: "0", SERVE_WORKERS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  const killer = setTimeout(() => child.kill("SIGKILL"), 180_000);
  try {
    const line = await new Promise<string>((res, rej) => {
      createInterface({ input: child.stdout! }).once("line", res);
      void exited.then((code) => rej(new Error(`serve exited (${code}) before ready:\n${stderr}`)));
    });
    const ready = JSON.parse(line) as { api: string; api_key: string; database_url: string; queue_url: string; dlq_url: string; workers: string[] };
    for (const k of ["api", "api_key", "database_url", "queue_url", "dlq_url"] as const) assert.equal(typeof ready[k], "string", k);
    assert.equal(ready.workers.length, 1);
    const auth = { authorization: `Bearer ${ready.api_key}`, "content-type": "application/json" };
    const submitted = await fetch(`${ready.api}/v1/jobs`, { method: "POST", headers: auth, body: JSON.stringify({ prompt: "hello from serve", params: { max_tokens: 8 } }) });
    assert.equal(submitted.status, 202, await submitted.clone().text());
    const body = (await submitted.json()) as { ids?: string[]; id?: string; data?: { id: string }[] };
    const id = body.ids?.[0] ?? body.id ?? body.data?.[0]?.id;
    assert.ok(id, JSON.stringify(body));
    const got = await fetch(`${ready.api}/v1/jobs/${id}?wait=60`, { headers: auth });
    const record = (await got.json()) as { status: string };
    assert.equal(record.status, "succeeded", JSON.stringify(record));
    assert.equal((await fetch(`${ready.workers[0]}/health/ready`)).status, 200);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
  } finally {
    clearTimeout(killer);
    child.kill("SIGKILL");
  }
});
