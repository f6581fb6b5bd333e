/**
 * `faults --scenario all-down`: every provider gone at once (the vLLM simulator and the Ollama and Gemini stand-ins
 * closed: ports unreachable) while jobs arrive, then all back. What must hold:
 *   - jobs with a deadline inside the outage end `expired` (or `failed`) with a code, not before their deadline;
 *   - jobs without one wait unharmed: none terminal during the outage, none dead, none in the DLQ, and the outage
 *     costs each at most one delivery beyond its first (the records' `attempts`: claims, one per delivery run);
 *   - once the providers are back every waiting job succeeds, each written once, never two calls at once.
 * Last line: one JSON object; exit 1 when any of that fails.
 *   --jobs 50 --workers 2 --down-ms 20000 --deadline-share 0.5 --deadline-ms 8000 --cooldown-ms 2000 --visibility 10
 */
import { parseArgs } from "node:util";
import type pg from "pg";
import { runCleanup, type CleanupStep } from "../../shared/shutdown.ts";
import { SqsQueue } from "../../shared/queue/sqs.ts";
import { startEmulator } from "../local/sqs-emulator.ts";
import { createPool, schemaScopedUrl } from "../../shared/store/pool.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { Producer } from "../../producer/producer.ts";
import { newJobId, type JobInput } from "../../shared/contract.ts";
import { startVllmSimulator, type RunningSimulator } from "../simulators/vllm/server.ts";
import { spawnWorker } from "./worker-process.ts";
import { WorkerFleet } from "./supervisor.ts";
import { jobInput } from "./fault-jobs.ts";
import { startFallbacks } from "./fallbacks.ts";
import { overlappingCallIds } from "./overlapping-calls.ts";
import { providerCounts } from "./provider-counts.ts";
import { delay } from "../../shared/backoff.ts";
import { round } from "./stats.ts";

const MAX_RECEIVE_COUNT = 5;

interface Row {
  id: string;
  status: string;
  attempts: number;
  /** SQS's ApproximateReceiveCount of the delivery last claimed. */
  receive_count: number;
  result_writes: number;
  error_code: string | null;
  provider: string | null;
  finished_at: Date | null;
}

export async function runAllDown(argv: string[], root: string, log: (line: string) => void): Promise<number> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string" },
      jobs: { type: "string", default: "50" },
      workers: { type: "string", default: "2" },
      "down-ms": { type: "string", default: "20000" },
      "deadline-share": { type: "string", default: "0.5" },
      "deadline-ms": { type: "string", default: "8000" },
      "cooldown-ms": { type: "string", default: "2000" },
      visibility: { type: "string", default: "10" },
      "time-scale": { type: "string", default: "1" },
      "timeout-s": { type: "string", default: "180" },
    },
  });
  const JOBS = Number(a.jobs);
  const DOWN_MS = Number(a["down-ms"]);
  const VISIBILITY = Number(a.visibility);
  const cleanup: CleanupStep[] = [];
  try {
    const schema = `alldown_${Date.now().toString(36)}`;
    const dbUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
    const pool = await createPool({ url: dbUrl, poolSize: 2, schema });
    cleanup.push(async () => {
      if (!process.env.FAULTS_KEEP_SCHEMA) await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    });
    await migrate(pool);
    const emulator = await startEmulator({ port: 0 });
    cleanup.push(() => emulator.stop());
    const queue = new SqsQueue({ region: "us-east-1", endpoint: emulator.endpoint });
    cleanup.push(() => queue.close());
    const { queueUrl, dlqUrl } = await queue.ensureQueueWithDlq(`alldown-${Date.now()}`, { visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: MAX_RECEIVE_COUNT, waitTimeSeconds: 20 });

    const simOptions = { port: 0, timeScale: Number(a["time-scale"]), seed: 1, requestLog: JOBS * 50 + 1000 };
    let sim: RunningSimulator | undefined = await startVllmSimulator(simOptions);
    const simPort = sim.port;
    const calls = [] as ReturnType<RunningSimulator["requestLog"]>["entries"];
    let dropped = 0;
    const collect = () => {
      const snap = sim?.requestLog();
      if (snap) (calls.push(...snap.entries), (dropped += snap.dropped));
    };
    cleanup.push(() => sim?.close() ?? Promise.resolve());
    const fallbacks = await startFallbacks({ timeScale: simOptions.timeScale, requestLog: simOptions.requestLog });
    cleanup.push(() => fallbacks.close());

    const env: Record<string, string> = {
      QUEUE_URLS: queueUrl,
      SQS_ENDPOINT: emulator.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "faults",
      AWS_SECRET_ACCESS_KEY: "faults",
      DATABASE_URL: schemaScopedUrl(dbUrl, schema),
      VLLM_URL: sim.url,
      ...fallbacks.env,
      SQS_VISIBILITY_TIMEOUT_SECONDS: String(VISIBILITY),
      HEARTBEAT_INTERVAL_MS: String(Math.floor((VISIBILITY * 1000) / 4)),
      MAINTENANCE_INTERVAL_MS: "2000",
      PROVIDER_TIMEOUT_MS: "10000",
      PROVIDER_BREAKER_COOLDOWN_MS: String(a["cooldown-ms"]),
      LOG_LEVEL: "warn",
    };
    const fleet = new WorkerFleet((name) => spawnWorker(name, env, `${root}/out/faults-logs/all-down`), log);
    cleanup.push(() => fleet.stop());
    await fleet.start(Number(a.workers));

    // --- everything down, then the jobs arrive ----------------------------------------------------------
    await sim.close();
    collect();
    sim = undefined;
    await fallbacks.down();
    const downAt = Date.now();
    log(`vLLM, Ollama and Gemini down for ${DOWN_MS} ms`);
    const withDeadline = Math.round(JOBS * Number(a["deadline-share"]));
    const deadline = new Date(downAt + Number(a["deadline-ms"]));
    const inputs: JobInput[] = Array.from({ length: JOBS }, (_, i) => ({ ...jobInput(newJobId(), i), ...(i < withDeadline ? { deadline: deadline.toISOString() } : {}) }));
    const deadlineIds = inputs.slice(0, withDeadline).map((j) => j.id!);
    const waitingIds = inputs.slice(withDeadline).map((j) => j.id!);
    const sent = await new Producer({ queue, queueUrl }).submitMany(inputs);
    if (sent.failed.length > 0) throw new Error(`submit failed: ${sent.failed[0]!.message}`);

    await delay(Math.max(0, downAt + DOWN_MS - Date.now()));
    const atEnd = await rowsOf(pool, waitingIds);
    const harmed = atEnd.filter((r) => r.status !== "queued" && r.status !== "running");
    const dlqDuring = (await queue.depth(dlqUrl)).visible;
    sim = await startVllmSimulator({ ...simOptions, port: simPort });
    await fallbacks.up();
    const upAt = Date.now();
    log(`providers back; ${harmed.length} waiting jobs were harmed, max attempts so far ${Math.max(0, ...atEnd.map((r) => r.attempts))}`);

    // --- wait for every job to end ------------------------------------------------------------------------
    const all = [...deadlineIds, ...waitingIds];
    const until = Date.now() + Number(a["timeout-s"]) * 1000;
    let rows: Row[] = [];
    for (;;) {
      rows = await rowsOf(pool, all);
      const open = all.length - rows.filter((r) => !["queued", "running"].includes(r.status)).length;
      const depth = await queue.depth(queueUrl);
      if (open === 0 && depth.visible + depth.inFlight + depth.delayed === 0) break;
      if (Date.now() > until) {
        log(`timed out with ${open} jobs open`);
        break;
      }
      await delay(500);
    }
    const recoveredS = (Date.now() - upAt) / 1000;
    await fleet.stop();
    collect();
    calls.push(...fallbacks.calls().entries);
    dropped += fallbacks.calls().dropped;
    const dlq = (await queue.depth(dlqUrl)).visible;

    // --- audit ----------------------------------------------------------------------------------------------
    const byId = new Map(rows.map((r) => [r.id, r]));
    const waiting = waitingIds.map((id) => byId.get(id));
    const timed = deadlineIds.map((id) => byId.get(id));
    const codes: Record<string, number> = {};
    for (const r of timed) if (r) codes[`${r.status}:${r.error_code}`] = (codes[`${r.status}:${r.error_code}`] ?? 0) + 1;
    const attempts = waiting.map((r) => r?.attempts ?? 0);
    const summary = {
      scenario: "all-down",
      jobs: JOBS,
      with_deadline: withDeadline,
      without_deadline: waitingIds.length,
      down_ms: DOWN_MS,
      deadline_expired: timed.filter((r) => r?.status === "expired" || r?.status === "failed").filter((r) => r!.error_code !== null).length,
      deadline_ended_early: timed.filter((r) => r?.finished_at && r.finished_at.getTime() < deadline.getTime()).length,
      deadline_codes: codes,
      waiting_harmed_during_outage: harmed.length,
      waiting_succeeded: waiting.filter((r) => r?.status === "succeeded").length,
      waiting_dead: waiting.filter((r) => r?.status === "dead").length,
      lost: all.filter((id) => !byId.has(id)).length,
      duplicates: rows.filter((r) => r.result_writes > 1).length,
      max_attempts_at_outage_end: Math.max(0, ...atEnd.map((r) => r.attempts)),
      max_attempts: Math.max(0, ...attempts),
      max_receive_count: Math.max(0, ...waiting.map((r) => r?.receive_count ?? 0)),
      attempts_over_two: attempts.filter((n) => n > 2).length,
      dlq,
      dlq_during_outage: dlqDuring,
      overlapping_calls: overlappingCallIds(calls).length,
      request_log_dropped: dropped,
      providers: providerCounts(rows),
      recovered_s: round(recoveredS, 1),
    };
    process.stdout.write(
      [
        `all providers down: ${JOBS} jobs (${withDeadline} with a deadline ${a["deadline-ms"]} ms into a ${DOWN_MS} ms outage) through ${a.workers} workers`,
        `  with a deadline: ${summary.deadline_expired}/${withDeadline} ended with a code ${JSON.stringify(codes)}, ${summary.deadline_ended_early} before their deadline`,
        `  without one: ${harmed.length} harmed during the outage, ${summary.waiting_succeeded}/${waitingIds.length} succeeded ${round(recoveredS, 1)} s after the providers came back, ${summary.waiting_dead} dead; attempts max ${summary.max_attempts_at_outage_end} when the outage ended, ${summary.max_attempts} at the end (receive count ${summary.max_receive_count}), ${summary.attempts_over_two} jobs over two`,
        `  lost ${summary.lost}, duplicates ${summary.duplicates}, overlapping calls ${summary.overlapping_calls}, DLQ ${dlq} (${dlqDuring} during the outage); answered by ${JSON.stringify(summary.providers)}`,
        JSON.stringify(summary),
        "",
      ].join("\n"),
    );
    const ok =
      summary.deadline_expired === withDeadline &&
      summary.deadline_ended_early === 0 &&
      harmed.length === 0 &&
      summary.waiting_succeeded === waitingIds.length &&
      summary.attempts_over_two === 0 &&
      [summary.lost, summary.duplicates, dlq, dlqDuring, summary.overlapping_calls, dropped].every((n) => n === 0);
    return ok ? 0 : 1;
  } finally {
    await runCleanup(cleanup, (err) => log(`cleanup: ${(err as Error).message}`));
  }
}

async function rowsOf(pool: pg.Pool, ids: string[]): Promise<Row[]> {
  const { rows } = await pool.query<Row>("SELECT id, status, attempts, receive_count, result_writes, error_code, provider, finished_at FROM jobs WHERE id = ANY($1::text[])", [ids]);
  return rows;
}
