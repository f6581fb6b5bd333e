/**
 * The fault suite at a small size, as part of `make test`: real worker processes, kill -9 ×5, the simulator gone,
 * Postgres cut, poison messages, a SIGTERM drain — then nothing lost, nothing doubled. Full size: `make faults`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";

test("fault suite (400 jobs, 5 kills, outages, poison, drain): lost 0, duplicates 0", async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "scripts/faults.ts", "--jobs", "400", "--workers", "3", "--kills", "5", "--sim-down-ms", "3000", "--pg-cut-ms", "2000", "--visibility", "10", "--timeout-s", "240"],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  const last = stdout.trim().split("\n").at(-1) ?? "";
  assert.ok(last.startsWith("{"), `no JSON summary; stderr tail:\n${stderr.split("\n").slice(-20).join("\n")}`);
  const summary = JSON.parse(last) as Record<string, number>;
  assert.equal(summary.lost, 0, stdout);
  assert.equal(summary.duplicates, 0, stdout);
  assert.equal(summary.kills, 5);
  assert.equal(summary.jobs, 400);
  assert.equal(summary.failed_poison, 4, "every poison message accounted for");
  assert.equal(summary.succeeded! + summary.dead!, 396, "every valid job ended");
  assert.ok(summary.provider_calls_per_job! >= 1, "each job reached the provider");
  assert.equal(code, 0);
});
