/**
 * `make faults`: the real fleet through real faults, then an audit of the store, the queues and the provider's
 * request log. Several worker processes (kept at size by a supervisor), the SQS emulator, Postgres behind a TCP
 * fault proxy (in a scratch database of its own), the vLLM simulator. During the run: kill -9 of random workers
 * mid-batch, the simulator gone for a while, Postgres cut, ~1 % poison messages of several kinds, special jobs
 * (fleet/fault-jobs.ts: NUL prompts, NUL answers, jobs that crash their worker, another tenant reusing ids,
 * messages sent twice) and a SIGTERM drain of one worker. Last line: one JSON object; exit 1 when anything was
 * lost, written twice, stuck, deadlocked, called twice at once, dead beside a crashing job, or a special job did not
 * end as its kind expects.
 *   --jobs 10000 --workers 4 --kills 5 --sim-down-ms 30000 --pg-cut-ms 10000 --poison-rate 0.01 --visibility 20
 *   --nul-prompts 5 --nul-answers 5 --crash-jobs 3 --tenant-conflicts 10 --double-sends 50 --settle-s 40
 * The vLLM outage is the fallbacks' turn: an Ollama and a Gemini stand-in (simulators of their own) take the work,
 * jobs per provider are reported, and an outage of 10 s or more must see some jobs answered by one.
 * `--scenario all-down`: every provider down at once instead (fleet/all-down.ts, its own flags).
 */
import { parseArgs } from "node:util";
import type pg from "pg";
import { resolve } from "node:path";
import { runCleanup, type CleanupStep } from "../shared/shutdown.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { startEmulator } from "./local/sqs-emulator.ts";
import { createPool, schemaScopedUrl } from "../shared/store/pool.ts";
import { migrate } from "../shared/store/migrate.ts";
import { Producer } from "../producer/producer.ts";
import { buildJob, encodeJob, jobIdOf, newJobId, type JobInput } from "../shared/contract.ts";
import { startVllmSimulator, type RequestLogEntry, type RunningSimulator } from "./simulators/vllm/server.ts";
import { startFaultProxy } from "./fleet/tcp-proxy.ts";
import { spawnWorker, WORKER_HARNESS } from "./fleet/worker-process.ts";
import { WorkerFleet } from "./fleet/supervisor.ts";
import { poisonBodies } from "./fleet/poison-bodies.ts";
import { CRASH_MARKER, NUL_ANSWER_MARKER, OTHER_TENANT, conflictBody, jobInput, nulPromptBody } from "./fleet/fault-jobs.ts";
import { audit, byKind, dlqSummary, type FaultPlan, type JobRow, type QueueMessage } from "./fleet/audit.ts";
import { overlappingCallIds } from "./fleet/overlapping-calls.ts";
import { createScratchDatabase, deadlockCount } from "./fleet/pg-stats.ts";
import { delay } from "../shared/backoff.ts";
import { round } from "./fleet/stats.ts";
import { startFallbacks } from "./fleet/fallbacks.ts";
import { runAllDown } from "./fleet/all-down.ts";
import { providerCounts } from "./fleet/provider-counts.ts";

/** `mixed` (the default): the run above. `all-down`: every provider gone at once (fleet/all-down.ts, its own flags). */
const SCENARIO = parseArgs({ options: { scenario: { type: "string", default: "mixed" } }, strict: false }).values.scenario;
const { values: a } = parseArgs({
  // all-down parses its own flags; this scenario's defaults stay harmlessly unused.
  args: SCENARIO === "all-down" ? [] : undefined,
  options: {
    scenario: { type: "string" },
    jobs: { type: "string", default: "10000" },
    workers: { type: "string", default: "4" },
    kills: { type: "string", default: "5" },
    "sim-down-ms": { type: "string", default: "30000" },
    "pg-cut-ms": { type: "string", default: "10000" },
    "poison-rate": { type: "string", default: "0.01" },
    visibility: { type: "string", default: "20" },
    "time-scale": { type: "string", default: "1" },
    "timeout-s": { type: "string", default: "1200" },
    "nul-prompts": { type: "string" },
    "nul-answers": { type: "string" },
    "crash-jobs": { type: "string", default: "3" },
    "tenant-conflicts": { type: "string" },
    "double-sends": { type: "string" },
    /**
     * With the main queue empty this long, nothing can change any more. Default: the README's bound for recording a
     * lost last delivery dead (visibility + 2 heartbeats + 1.5 sweep intervals), plus 5 s.
     */
    "settle-s": { type: "string" },
  },
});
const JOBS = Number(a.jobs);
const WORKERS = Number(a.workers);
const KILLS = Number(a.kills);
const VISIBILITY = Number(a.visibility);
const HEARTBEAT_MS = Math.floor((VISIBILITY * 1000) / 4);
const MAINTENANCE_MS = 2_000;
const SETTLE_S = a["settle-s"] === undefined ? Math.ceil(VISIBILITY + (2 * HEARTBEAT_MS + 1.5 * MAINTENANCE_MS) / 1000 + 5) : Number(a["settle-s"]);
const sized = (flag: string | undefined, min: number, per: number) => (flag === undefined ? Math.max(min, Math.round(JOBS / per)) : Number(flag));
const NUL_PROMPTS = sized(a["nul-prompts"], 2, 2000);
const NUL_ANSWERS = sized(a["nul-answers"], 2, 2000);
const CRASHES = Number(a["crash-jobs"]);
const CONFLICTS = sized(a["tenant-conflicts"], 4, 1000);
const DOUBLES = sized(a["double-sends"], 10, 200);
const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** An outage this long must see a fallback answer jobs (the breaker opens within seconds; the fallbacks are up). */
const FALLBACK_REQUIRED_OUTAGE_MS = 10_000;
const log = (line: string) => process.stderr.write(`[faults ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
/** A step that runs at most once however often it is called (the audit ends what cleanup would end on failure). */
function once<T>(step: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= step());
}

async function main(): Promise<number> {
  const cleanup: CleanupStep[] = [];
  try {
    const tag = Date.now().toString(36);
    const schema = `faults_${tag}`;
    const keep = Boolean(process.env.FAULTS_KEEP_SCHEMA);
    // A database of its own, so the deadlock counter (per database) counts this run only.
    const scratch = await createScratchDatabase(PG_URL, `faults_${tag}`);
    const dbUrl = scratch?.url ?? PG_URL;
    if (scratch === undefined) log("could not create a scratch database: deadlocks are counted over the shared one");
    const pool = await createPool({ url: dbUrl, poolSize: 4, schema });
    const endPool = once(async () => {
      if (!keep && scratch === undefined) await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    });
    const finishScratch = once(async () => scratch?.finish(keep));
    cleanup.push(finishScratch, endPool);
    await migrate(pool);
    const deadlocksBefore = await deadlockCount(pool);
    const pg = new URL(dbUrl);
    const proxy = await startFaultProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
    cleanup.push(() => proxy.close());
    const viaProxy = new URL(dbUrl);
    viaProxy.port = String(proxy.port);
    const workerDbUrl = schemaScopedUrl(viaProxy.toString(), schema);

    const emulator = await startEmulator({ port: 0 });
    cleanup.push(() => emulator.stop());
    const queue = new SqsQueue({ region: "us-east-1", endpoint: emulator.endpoint });
    cleanup.push(() => queue.close());
    const { queueUrl, dlqUrl } = await queue.ensureQueueWithDlq(`faults-${Date.now()}`, { visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: 5, waitTimeSeconds: 20 });

    // The request log holds every provider call of the run (a few per job at most) for the overlap audit.
    const simOptions = { port: 0, timeScale: Number(a["time-scale"]), seed: 1, requestLog: JOBS * 5 + 1000 };
    let sim: RunningSimulator = await startVllmSimulator(simOptions);
    const simPort = sim.port;
    let servedBefore = 0;
    const calls: RequestLogEntry[] = [];
    let callsDropped = 0;
    const collectCalls = () => {
      const snapshot = sim.requestLog();
      calls.push(...snapshot.entries);
      callsDropped += snapshot.dropped;
    };
    cleanup.push(() => sim.close());
    // Ollama and Gemini stand-ins on simulators of their own: the vLLM outage leaves them up to take the work.
    const fallbacks = await startFallbacks({ timeScale: simOptions.timeScale, requestLog: simOptions.requestLog });
    cleanup.push(() => fallbacks.close());

    const env: Record<string, string> = {
      QUEUE_URLS: queueUrl,
      SQS_ENDPOINT: emulator.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "faults",
      AWS_SECRET_ACCESS_KEY: "faults",
      DATABASE_URL: workerDbUrl,
      DATABASE_POOL_SIZE: "5",
      VLLM_URL: sim.url,
      ...fallbacks.env,
      SQS_VISIBILITY_TIMEOUT_SECONDS: String(VISIBILITY),
      HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      MAINTENANCE_INTERVAL_MS: String(MAINTENANCE_MS),
      DRAIN_DEADLINE_MS: "10000",
      PROVIDER_TIMEOUT_MS: "60000",
      PROVIDER_BREAKER_COOLDOWN_MS: "5000",
      LOG_LEVEL: "warn",
    };
    const logDir = resolve(ROOT, "out/faults-logs");
    const fleet = new WorkerFleet((name) => spawnWorker(name, env, logDir, [], "source", [WORKER_HARNESS]), log);
    cleanup.push(() => fleet.stop());
    await fleet.start(WORKERS);
    log(`${WORKERS} workers up; emulator ${emulator.endpoint}; simulator :${simPort}; fallbacks ${fallbacks.env.OLLAMA_URL} ${fallbacks.env.GEMINI_URL}; Postgres via fault proxy :${proxy.port}; database ${pg.pathname.slice(1)} schema ${schema}`);

    // --- the plan: which job is which kind ----------------------------------------------------------------
    const poisonCount = Math.round(JOBS * Number(a["poison-rate"]));
    const plainCount = JOBS - poisonCount - NUL_PROMPTS - NUL_ANSWERS - CRASHES;
    if (plainCount < CONFLICTS + DOUBLES) throw new Error(`--jobs ${JOBS} leaves ${plainCount} plain jobs, fewer than conflicts + doubles`);
    const ids = (n: number) => Array.from({ length: n }, () => newJobId());
    const plainInputs = ids(plainCount).map((id, i) => jobInput(id, i));
    const conflictInputs = plainInputs.slice(0, CONFLICTS);
    const doubleInputs = plainInputs.slice(CONFLICTS, CONFLICTS + DOUBLES);
    const producerInputs = plainInputs.slice(CONFLICTS + DOUBLES);
    const nulAnswerInputs = ids(NUL_ANSWERS).map((id, i) => jobInput(id, plainCount + i, ` ${NUL_ANSWER_MARKER}`));
    const crashInputs = ids(CRASHES).map((id, i) => jobInput(id, plainCount + NUL_ANSWERS + i, ` ${CRASH_MARKER}`));
    const nulPromptIds = ids(NUL_PROMPTS);
    const poisonAll = poisonBodies(poisonCount);
    const contentOf = (input: JobInput) => input.messages![0]!.content;
    const plan: FaultPlan = {
      plain: plainInputs.map((j) => j.id!),
      nulAnswers: nulAnswerInputs.map((j) => j.id!),
      crashes: crashInputs.map((j) => j.id!),
      nulPrompts: nulPromptIds,
      poisonWithId: poisonAll.flatMap((p) => (p.id ? [p.id] : [])),
      noIdPoison: poisonAll.filter((p) => !p.id).length,
      conflicts: conflictInputs.map((j) => ({
        id: j.id!,
        tenant: j.tenant,
        content: contentOf(j),
        expectedOutput: sim.expectedTexts("chat", { messages: j.messages, max_tokens: j.params?.max_tokens })[0]!,
      })),
      doubles: doubleInputs.map((j) => j.id!),
    };
    const trackedIds = [...plan.plain, ...plan.nulAnswers, ...plan.crashes, ...plan.nulPrompts, ...plan.poisonWithId];
    const validCount = plainCount + NUL_ANSWERS + CRASHES;

    // --- submit: conflict originals first (so they finish early), crashing jobs and doubles, then plain jobs with
    // poison, NUL prompts and NUL answers mixed in: kinds apart in time, so one kind's trouble (a statement failing
    // for a NUL) does not decide another kind's check by landing in the same batch.
    const producer = new Producer({ queue, queueUrl });
    const submit = async (inputs: JobInput[]) => {
      const res = await producer.submitMany(inputs);
      if (res.failed.length > 0) throw new Error(`submit failed: ${res.failed[0]!.message}`);
    };
    const sendRaw = async (bodies: string[]) => {
      for (let i = 0; i < bodies.length; i += 10) {
        const res = await queue.sendBatch(queueUrl, bodies.slice(i, i + 10).map((body, k) => ({ id: String(k), body })));
        if (res.failed.length > 0) throw new Error(`raw send failed: ${res.failed[0]!.message}`);
      }
    };
    await submit(conflictInputs);
    await submit(crashInputs);
    // Each double's two copies go in one batch, so two workers may well receive them at the same moment.
    await sendRaw(doubleInputs.flatMap((input) => {
      const body = encodeJob(buildJob(input));
      return [body, body];
    }));
    const raw = [...poisonAll.map((p) => p.body), ...nulPromptIds.map((id, i) => nulPromptBody(id, i))];
    const chunk = 500;
    const chunks = Math.max(1, Math.ceil(producerInputs.length / chunk));
    for (let c = 0; c < chunks; c++) {
      await submit(producerInputs.slice(c * chunk, (c + 1) * chunk));
      if (c === Math.floor(chunks / 2)) await submit(nulAnswerInputs);
      await sendRaw(raw.splice(0, Math.ceil(raw.length / (chunks - c))));
    }
    log(`submitted ${validCount} valid jobs (${NUL_ANSWERS} NUL answers, ${CRASHES} crashing, ${DOUBLES} sent twice, ${CONFLICTS} to be reused by tenant "other"), ${poisonCount} poison and ${NUL_PROMPTS} NUL prompts`);
    const t0 = Date.now();

    // --- faults, triggered by progress ----------------------------------------------------------------
    let done = 0;
    let finished = false;
    const terminalCount = async (only?: string[]) => {
      const sql = "SELECT count(*) AS n FROM jobs WHERE status NOT IN ('queued','running')" + (only ? " AND id = ANY($1::text[])" : "");
      const { rows } = await pool.query<{ n: string }>(sql, only ? [only] : []);
      return Number(rows[0]!.n);
    };
    const progress = async () => {
      done = await terminalCount();
      return done / trackedIds.length;
    };
    /** Waits for a progress fraction; false when the run ended first. */
    const at = async (fraction: number) => {
      while (!finished && (await progress().catch(() => 0)) < fraction) await delay(250);
      return !finished;
    };
    let kills = 0;
    let drainExit: number | null | undefined;
    const killOne = async () => {
      const { name } = await fleet.signalOne("SIGKILL");
      kills += 1;
      log(`kill -9 ${name} (${kills}/${KILLS}); replaced`);
    };
    const timeline = (async () => {
      const killPoints = Array.from({ length: KILLS }, (_, i) => 0.05 + (0.8 * i) / Math.max(1, KILLS));
      const events: [number, () => Promise<void>][] = [
        ...killPoints.map((p): [number, () => Promise<void>] => [p, killOne]),
        [0.15, async () => {
          servedBefore += sim.engine.stats().requestsServed;
          await sim.close();
          collectCalls(); // after close: calls cut by the outage are logged as they end
          log(`simulator down for ${a["sim-down-ms"]} ms`);
          await delay(Number(a["sim-down-ms"]));
          sim = await startVllmSimulator({ ...simOptions, port: simPort });
          log("simulator back");
        }],
        [0.35, async () => {
          proxy.cut();
          log(`Postgres cut for ${a["pg-cut-ms"]} ms`);
          await delay(Number(a["pg-cut-ms"]));
          proxy.restore();
          log("Postgres back");
        }],
        [0.5, async () => {
          const { name, exit } = await fleet.signalOne("SIGTERM", () => 0);
          drainExit = exit.code;
          log(`SIGTERM drain of ${name}: exit ${drainExit}; replaced`);
        }],
      ];
      events.sort((x, y) => x[0] - y[0]);
      for (const [fraction, run] of events) if (await at(fraction)) await run();
    })();

    // --- another tenant reuses the conflict jobs' ids once their originals are terminal --------------------
    let othersSent = CONFLICTS === 0;
    let quietSince: number | undefined;
    const conflicts = (async () => {
      const originals = plan.conflicts.map((c) => c.id);
      while (quietSince === undefined && (await terminalCount(originals).catch(() => 0)) < originals.length) await delay(250);
      await sendRaw(originals.map((id) => conflictBody(id)));
      othersSent = true;
      log(`sent ${originals.length} jobs from tenant "other" reusing ids`);
    })();

    // --- wait until every tracked id is terminal and the queue is empty, or nothing can change any more --------
    const deadline = Date.now() + Number(a["timeout-s"]) * 1000;
    const settleMs = SETTLE_S * 1000;
    let lastLog = 0;
    for (;;) {
      await delay(1000);
      await progress().catch(() => 0);
      const depth = await queue.depth(queueUrl);
      const empty = depth.visible + depth.inFlight + depth.delayed === 0;
      quietSince = empty ? (quietSince ?? Date.now()) : undefined;
      if (Date.now() - lastLog > 5000) {
        log(`progress ${done}/${trackedIds.length} terminal; queue visible ${depth.visible} in flight ${depth.inFlight}`);
        lastLog = Date.now();
      }
      if (othersSent && empty && done >= trackedIds.length) break;
      if (othersSent && quietSince !== undefined && Date.now() - quietSince >= settleMs) {
        log(`queue empty for ${SETTLE_S} s with ${trackedIds.length - done} jobs not terminal: nothing left to run them`);
        break;
      }
      if (Date.now() > deadline) {
        log("timed out waiting for the fleet");
        break;
      }
    }
    finished = true;
    await Promise.all([timeline, conflicts]);
    const elapsed = (Date.now() - t0) / 1000;

    // --- audit --------------------------------------------------------------------------------------------
    await fleet.stop();
    collectCalls();
    const fallbackCalls = fallbacks.calls();
    calls.push(...fallbackCalls.entries);
    callsDropped += fallbackCalls.dropped;
    const fallbackServed = fallbackCalls.entries.filter((c) => c.outcome === "served").length;
    const served = servedBefore + sim.engine.stats().requestsServed + fallbackServed;
    const dlq = await drainQueue(queue, dlqUrl);
    const left = await drainQueue(queue, queueUrl);
    const rows = await jobRows(pool, trackedIds);
    const overlapping = overlappingCallIds(calls);
    const r = audit({ plan, rows, dlq, left, overlapping });
    const providers = providerCounts(rows);
    // Any job a fallback answered was answered during the outage: vLLM is the first choice whenever it is up.
    const byFallback = providers.ollama + providers.gemini;
    const fallbackRequired = Number(a["sim-down-ms"]) >= FALLBACK_REQUIRED_OUTAGE_MS;
    let deadlocksAfter = scratch === undefined ? await deadlockCount(pool) : undefined;
    await endPool();
    deadlocksAfter ??= (await finishScratch())!;
    const deadlocks = deadlocksAfter - deadlocksBefore;

    const summary = {
      jobs: JOBS,
      valid: validCount,
      poison: poisonCount + NUL_PROMPTS,
      succeeded: r.succeeded,
      failed_poison: r.failedPoison,
      dead: r.dead,
      // Dead but not a crash job: a job that died beside one (or any other job harmed by another's fate).
      other_dead: r.dead - r.crashDeadOk,
      lost: r.lost,
      duplicates: r.duplicates,
      stuck: r.stuckIds.length,
      deadlocks,
      overlapping_calls: r.overlappingCalls,
      kills,
      worker_crashes: fleet.crashes,
      nul_prompts: NUL_PROMPTS,
      nul_prompts_ok: r.nulPromptsOk,
      nul_answers: NUL_ANSWERS,
      nul_answers_ok: r.nulAnswersOk,
      crash_jobs: CRASHES,
      crash_dead_ok: r.crashDeadOk,
      tenant_conflicts: CONFLICTS,
      tenant_conflicts_ok: r.tenantConflictsOk,
      double_sent: DOUBLES,
      double_sent_ok: r.doubleSentOk,
      calls_without_id: calls.filter((c) => c.requestId === undefined).length,
      request_log_dropped: callsDropped,
      provider_calls_per_job: round(served / Math.max(1, validCount), 3),
      providers,
      served_by_fallback: byFallback,
      fallback_required: fallbackRequired,
    };
    const stuck = new Set(r.stuckIds);
    const finishedInDlq = dlq.flatMap((m) => (m.jobId !== undefined && m.tenant !== OTHER_TENANT && trackedIds.includes(m.jobId) && !stuck.has(m.jobId) ? [m.jobId] : []));
    const sample = (ids: string[]) => (ids.length ? ` (e.g. ${ids.slice(0, 3).join(", ")})` : "");
    process.stdout.write(
      [
        `fault suite: ${JOBS} jobs (${validCount} valid, ${poisonCount} poison, ${NUL_PROMPTS} NUL prompts) through ${WORKERS} workers in ${round(elapsed, 1)} s`,
        `  kills -9: ${kills}; simulator down ${a["sim-down-ms"]} ms; Postgres cut ${a["pg-cut-ms"]} ms; drained worker exit code ${drainExit}; workers that died unasked ${fleet.crashes}`,
        `  succeeded ${r.succeeded}, poison failed ${r.failedPoison}, dead ${r.dead} (${summary.other_dead} not crash jobs), other failed ${r.otherFailed}, expired ${r.expired} ${JSON.stringify(r.failureCodes)}`,
        `  lost ${r.lost}${sample(r.lostIds)}, stuck ${r.stuckIds.length}${sample(r.stuckIds)}, duplicates ${r.duplicates}, deadlocks ${deadlocks}, overlapping calls ${r.overlappingCalls}${sample(overlapping)}`,
        `  stuck by kind ${JSON.stringify(byKind(plan, r.stuckIds))}; left in queue ${left.length}, in DLQ ${dlq.length} ${JSON.stringify(dlqSummary(dlq))}`,
        `  finished jobs whose message still reached the DLQ: ${JSON.stringify(byKind(plan, finishedInDlq))}; id-less poison dead-lettered more than once: ${r.extraPoisonCopies}`,
        `  as expected: NUL prompts ${r.nulPromptsOk}/${NUL_PROMPTS}, NUL answers ${r.nulAnswersOk}/${NUL_ANSWERS}, crashing jobs dead ${r.crashDeadOk}/${CRASHES}, tenant conflicts ${r.tenantConflictsOk}/${CONFLICTS}, sent twice ${r.doubleSentOk}/${DOUBLES}`,
        `  answered by provider ${JSON.stringify(providers)}: ${byFallback} by a fallback during the vLLM outage${fallbackRequired ? " (required)" : " (not required at this outage length)"}`,
        `  provider calls per valid job ${summary.provider_calls_per_job} (${calls.length} logged, ${summary.calls_without_id} without a job id, ${callsDropped} dropped)`,
        JSON.stringify(summary),
        "",
      ].join("\n"),
    );
    const clean = [r.lost, r.duplicates, r.stuckIds.length, deadlocks, r.overlappingCalls, callsDropped, summary.other_dead].every((n) => n === 0);
    const asExpected =
      r.nulPromptsOk === NUL_PROMPTS && r.nulAnswersOk === NUL_ANSWERS && r.crashDeadOk === CRASHES && r.tenantConflictsOk === CONFLICTS && r.doubleSentOk === DOUBLES;
    const fallbackOk = !fallbackRequired || byFallback > 0;
    return clean && asExpected && fallbackOk && drainExit === 0 ? 0 : 1;
  } finally {
    await runCleanup(cleanup, (err) => log(`cleanup: ${(err as Error).message}`));
  }
}

/** Every tracked job's row; `to_jsonb` so columns newer than this script (output_nul_replaced) come along when present. */
async function jobRows(pool: pg.Pool, ids: string[]): Promise<JobRow[]> {
  const { rows } = await pool.query<{ r: Record<string, unknown> & JobRow; content: string | null }>(
    "SELECT to_jsonb(j) - 'request' AS r, coalesce(j.request->'messages'->0->>'content', j.request->>'prompt') AS content FROM jobs j WHERE id = ANY($1::text[])",
    [ids],
  );
  return rows.map(({ r, content }) => ({ ...r, content }));
}

/** Receives (and deletes) everything left in a queue, returning what it found. */
async function drainQueue(queue: SqsQueue, url: string): Promise<QueueMessage[]> {
  const found: QueueMessage[] = [];
  for (;;) {
    const batch = await queue.receive(url, { maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 60 });
    if (batch.length === 0) return found;
    for (const m of batch) found.push({ jobId: jobIdOf(m.body), tenant: tenantOf(m.body), failureCode: m.attributes?.failure_code });
    await queue.deleteBatch(url, batch.map((m, i) => ({ id: String(i), receiptHandle: m.receiptHandle })));
  }
}

function tenantOf(body: string): string | undefined {
  try {
    const tenant = (JSON.parse(body) as { tenant?: unknown } | null)?.tenant;
    return typeof tenant === "string" ? tenant : undefined;
  } catch {
    return undefined;
  }
}

(SCENARIO === "all-down" ? runAllDown(process.argv.slice(2), ROOT, log) : main()).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fault suite failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
