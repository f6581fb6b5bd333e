/**
 * The all-down scenario at a small size: vLLM and both fallbacks gone at once while jobs arrive. Jobs with a deadline
 * inside the outage end with a code, never before it; the rest wait unharmed (nothing terminal, dead or
 * dead-lettered, at most one delivery spent beyond the first) and all succeed once the providers are back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";

type Summary = Record<string, number> & { deadline_codes: Record<string, number> };
let run: Promise<{ s: Summary; stdout: string }> | undefined;

/** One run of the scenario, shared by the tests below. */
function allDown(): Promise<{ s: Summary; stdout: string }> {
  return (run ??= runScenario());
}

async function runScenario(): Promise<{ s: Summary; stdout: string }> {
  const { stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "scripts/faults.ts", "--scenario", "all-down", "--jobs", "50", "--workers", "2", "--down-ms", "20000", "--deadline-ms", "8000", "--cooldown-ms", "2000"],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  const last = stdout.trim().split("\n").at(-1) ?? "";
  assert.ok(last.startsWith("{"), `no JSON summary; stderr tail:\n${stderr.split("\n").slice(-20).join("\n")}`);
  return { s: JSON.parse(last) as Summary, stdout };
}

test("all providers down: deadlines expire with a code, the rest wait unharmed and succeed after", async () => {
  const { s, stdout } = await allDown();
  assert.equal(s.jobs, 50);
  assert.deepEqual(
    {
      deadline_expired: s.deadline_expired,
      deadline_ended_early: s.deadline_ended_early,
      waiting_harmed_during_outage: s.waiting_harmed_during_outage,
      waiting_succeeded: s.waiting_succeeded,
      waiting_dead: s.waiting_dead,
      lost: s.lost,
      duplicates: s.duplicates,
      dlq: s.dlq,
      dlq_during_outage: s.dlq_during_outage,
      overlapping_calls: s.overlapping_calls,
      request_log_dropped: s.request_log_dropped,
    },
    {
      deadline_expired: s.with_deadline,
      deadline_ended_early: 0,
      waiting_harmed_during_outage: 0,
      waiting_succeeded: s.without_deadline,
      waiting_dead: 0,
      lost: 0,
      duplicates: 0,
      dlq: 0,
      dlq_during_outage: 0,
      overlapping_calls: 0,
      request_log_dropped: 0,
    },
    stdout,
  );
  assert.ok(s.with_deadline! > 0 && s.without_deadline! > 0, "both kinds ran");
  assert.deepEqual(Object.keys(s.deadline_codes).sort(), ["expired:JOB_EXPIRED"], "deadline jobs end expired with JOB_EXPIRED");
  assert.ok(s.max_receive_count! < 5, "no waiting job came near the DLQ");
});

// The outage costs a waiting job at most the delivery it was holding when the providers went down: while no provider
// is closed the worker takes no work and the router probes with a one-token call of its own, never with a job.
test("all providers down: no delivery beyond the first is burned by the outage", async () => {
  const { s, stdout } = await allDown();
  assert.equal(s.attempts_over_two, 0, stdout);
});
