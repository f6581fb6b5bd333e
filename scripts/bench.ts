/**
 * `make bench`: every figure measured in this one run, on this machine.
 *   capacity_ratio          fleet throughput ÷ the simulator driven directly at its best concurrency (same settings)
 *   vs_naive                our fleet ÷ a naive sqs-consumer worker (batchSize 10, batch run concurrently), same
 *                           simulator, same number of processes
 *   overhead_ms_per_job     worker CPU ms per job against an instant backend (queue + store + bookkeeping only)
 *   jobs_per_s_per_process  the same run's throughput
 *   rss_mb                  one worker's resident memory with 1,000 jobs in flight
 *   deadlocks               Postgres deadlocks during the run (pg_stat_database, in a scratch database of its own)
 *   jobs_table              the jobs table's size (total, heap, indexes) empty and after each large run
 *   router_us_per_job       the provider router's own cost per job (in-process, a one-route router over an instant
 *                           fake vs the fake called directly), and its share of overhead_ms_per_job
 *   fallback_jobs_per_s     the fleet with vLLM unreachable, on Ollama + Gemini stand-ins only; with
 *                           fallback_providers (jobs answered by each), fallback_cost_usd and how many succeeded
 *   observability_ms_per_job  what metrics and logging cost: worker CPU ms per job against the instant backend with
 *                           METRICS=on (Prometheus, Datadog and CloudWatch to local stand-ins) and LOG_LEVEL=info,
 *                           minus the same with METRICS=off and LOG_LEVEL=warn, alternating rounds in one run
 *   capacity_ratio_mixed_8b/_70b  capacity_ratio on chat-like lengths (log-normal prompts and answers), on the 8B and
 *                           70B profiles (bench/mixed-workload.ts)
 *   idle_added_ms_p50/_p99  what one job pays on an idle fleet: submit → record readable, minus the provider's time,
 *                           with the p50 of each step (bench/idle-latency.ts)
 *   pg_statements_per_job   Postgres statements, rows and WAL bytes per job in the instant-backend run (bench/store-cost.ts)
 *   sqs_calls_per_job       worker SQS calls per job by kind, saturated and at low load, and what a million jobs cost
 *                           in SQS requests (bench/sqs-cost.ts)
 *   rss_mb_10k              one worker's resident memory with 10,000 jobs in flight; rss_mb_sustained: its peak
 *                           during the instant-backend run
 * Flags: --processes 2 --jobs 12000 --naive-jobs 1000 --overhead-jobs 20000 --fallback-jobs 500 --router-calls 200000
 *        --fallback-env "KEY=value ..." --max-tokens 64 --observability-jobs 10000 --observability-rounds 2
 *        --mixed-jobs-8b 1700 --mixed-jobs-70b 1200 --mixed-concurrency 1024,2048 --idle-jobs 200
 *        --storecost-jobs 5000 (when overhead is not run) --sqscost-jobs 5000 --rss-many 10000
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type pg from "pg";
import { delay } from "../shared/backoff.ts";
import type { JobInput } from "../shared/contract.ts";
import type { CompletionRequest } from "../shared/providers/provider.ts";
import { VllmClient } from "../shared/providers/vllm.ts";
import { startEmulator } from "./local/sqs-emulator.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { migrate } from "../shared/store/migrate.ts";
import { createPool, schemaScopedUrl } from "../shared/store/pool.ts";
import { Producer } from "../producer/producer.ts";
import { driveDirect } from "./bench/direct-drive.ts";
import { providerSplit, startFallbackStandIns, waitFinal, type FallbackResult } from "./bench/fallback-run.ts";
import { measureRouterOverhead } from "./bench/router-overhead.ts";
import { cpuSeconds, rssMb, startSimProcess } from "./bench/processes.ts";
import { spawnWorker, type WorkerProcess } from "./fleet/worker-process.ts";
import { round } from "./fleet/stats.ts";
import { createScratchDatabase, deadlockCount, tableSizes, type TableSizes } from "./fleet/pg-stats.ts";
import { spawn } from "node:child_process";
import { buildDist } from "./build.ts";
import { startCloudWatchStandIn, startDatadogStandIn } from "./local/metrics-stand-ins.ts";
import { measureMixed, type FleetRun, type MixedResult } from "./bench/mixed-workload.ts";
import { measureIdleLatency, type IdleLatency } from "./bench/idle-latency.ts";
import { StoreCostMeter, type StoreCost } from "./bench/store-cost.ts";
import { SQS_USD_PER_REQUEST, perJob, startCountingProxy, type CountingProxy, type SqsCalls } from "./bench/sqs-cost.ts";
import type { ProfileName } from "./simulators/vllm/profiles.ts";

const { values: a } = parseArgs({
  options: {
    processes: { type: "string", default: "2" },
    // ~33 s at the simulator's pace: at 4,000 (11 s) the first second — the submit, the workers' slow start from 64
    // in flight — was ~7 % of the run, and capacity_ratio measured the ramp more than the steady state (0.93 vs 0.978).
    jobs: { type: "string", default: "12000" },
    "naive-jobs": { type: "string", default: "1000" },
    "overhead-jobs": { type: "string", default: "20000" },
    "fallback-jobs": { type: "string", default: "500" },
    "router-calls": { type: "string", default: "200000" },
    /** Extra worker env for the fallback run, e.g. "PROVIDER_CHAIN=vllm,gemini ROUTER_BUDGET_MS=2000". */
    "fallback-env": { type: "string", default: "" },
    "max-tokens": { type: "string", default: "64" },
    "observability-jobs": { type: "string", default: "10000" },
    "observability-rounds": { type: "string", default: "2" },
    /** Extra node flags for worker processes, e.g. "--max-semi-space-size=8". */
    "worker-node-flags": { type: "string", default: "" },
    "mixed-jobs-8b": { type: "string", default: "1700" },
    "mixed-jobs-70b": { type: "string", default: "1200" },
    "mixed-concurrency": { type: "string", default: "1024,2048" },
    "idle-jobs": { type: "string", default: "200" },
    "storecost-jobs": { type: "string", default: "5000" },
    "sqscost-jobs": { type: "string", default: "5000" },
    /** Jobs in flight for rss_mb_10k (10,000: WORKER_CONCURRENCY's ceiling). */
    "rss-many": { type: "string", default: "10000" },
    /** Run only some parts; the others print as not measured. */
    only: { type: "string", default: "capacity,naive,overhead,rss,router,fallback,observability,mixed,idle,storecost,sqscost,rss10k" },
  },
});
const PROCESSES = Number(a.processes);
const MAX_TOKENS = Number(a["max-tokens"]);
const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SIM_FLAGS = ["--profile", "llama-3.1-8b-h100", "--seed", "7"];
const WORKER_FLAGS = a["worker-node-flags"]!.split(" ").filter(Boolean);
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const prompt = (i: number) => `benchmark request ${i}: summarise the plot of a novel in one paragraph.`;
const request = (i: number): CompletionRequest => ({ messages: [{ role: "user", content: prompt(i) }], params: { max_tokens: MAX_TOKENS } });
const input = (i: number): JobInput => ({ tenant: "bench", messages: [{ role: "user", content: prompt(i) }], params: { max_tokens: MAX_TOKENS } });

interface Rig {
  endpoint: string;
  queue: SqsQueue;
  pool: pg.Pool;
  /** DATABASE_URL for the processes under test: this run's schema. */
  dbUrl: string;
  /** The jobs table's size at each point measured, in order. */
  sizes: { at: string; jobs: number; bytes: TableSizes }[];
}

/** Records the jobs table's size now (before a TRUNCATE empties it). */
async function noteSize(rig: Rig, at: string): Promise<void> {
  const jobs = (await rig.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs")).rows[0]!.n;
  rig.sizes.push({ at, jobs, bytes: await tableSizes(rig.pool) });
}

async function freshQueue(rig: Rig, name: string): Promise<string> {
  return (await rig.queue.ensureQueueWithDlq(`bench-${name}-${Date.now()}`, { visibilityTimeoutSeconds: 300, maxReceiveCount: 5, waitTimeSeconds: 20 })).queueUrl;
}

async function submit(rig: Rig, queueUrl: string, n: number, make: (i: number) => JobInput = input, queue = rig.queue): Promise<void> {
  const producer = new Producer({ queue, queueUrl });
  for (let i = 0; i < n; i += 1000) {
    const res = await producer.submitMany(Array.from({ length: Math.min(1000, n - i) }, (_, k) => make(i + k)));
    if (res.failed.length > 0) throw new Error(res.failed[0]!.message);
  }
}

function workerEnv(rig: Rig, queueUrl: string, vllmUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    QUEUE_URLS: queueUrl,
    SQS_ENDPOINT: rig.endpoint, // `extra` may put the counting proxy (bench/sqs-cost.ts) in front
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    DATABASE_URL: rig.dbUrl,
    VLLM_URL: vllmUrl,
    SQS_VISIBILITY_TIMEOUT_SECONDS: "300",
    LOG_LEVEL: "warn",
    ...(process.env.BENCH_WORKER_ENV ? (JSON.parse(process.env.BENCH_WORKER_ENV) as Record<string, string>) : {}),
    ...extra,
  };
}

async function countDone(pool: pg.Pool, table: "jobs" | "naive_results"): Promise<number> {
  const sql = table === "jobs" ? "SELECT count(*)::int AS n FROM jobs WHERE status = 'succeeded'" : "SELECT count(*)::int AS n FROM naive_results";
  return (await pool.query<{ n: number }>(sql)).rows[0]!.n;
}

/** Returns how many queries it ran (the store-cost meter subtracts them). */
async function waitDone(pool: pg.Pool, table: "jobs" | "naive_results", target: number): Promise<number> {
  let polls = 1;
  for (; (await countDone(pool, table).catch(() => 0)) < target; polls++) await delay(100);
  return polls;
}

async function stopAll(workers: WorkerProcess[]): Promise<void> {
  workers.forEach((w) => w.kill("SIGTERM"));
  await Promise.all(workers.map((w) => w.exited));
}

/** Fleet throughput (jobs/s) on a fresh simulator: workers long-polling, clock from the submit to the last result. */
async function fleetRun(
  rig: Rig,
  jobs: number,
  simFlags: string[],
  o: { env?: Record<string, string>; make?: (i: number) => JobInput; sizeNote?: string; meter?: StoreCostMeter } = { sizeNote: "after the fleet run" },
): Promise<{ jobsPerS: number; cpuMsPerJob: number; store?: StoreCost }> {
  const sim = await startSimProcess(simFlags);
  await rig.pool.query("TRUNCATE jobs");
  const queueUrl = await freshQueue(rig, "fleet");
  await o.meter?.begin();
  // Workers up and long-polling first, then the clock starts with the submit, as the direct drive starts cold.
  const workers = Array.from({ length: PROCESSES }, (_, i) => spawnWorker(`bench-${i}`, workerEnv(rig, queueUrl, sim.url, o.env), resolve(ROOT, "out/bench-logs"), WORKER_FLAGS, "dist"));
  await Promise.all(workers.map((w) => w.ready));
  const cpu0 = workers.map((w) => cpuSeconds(w.child.pid!));
  const t0 = Date.now();
  await submit(rig, queueUrl, jobs, o.make);
  const polls = await waitDone(rig.pool, "jobs", jobs);
  const elapsed = (Date.now() - t0) / 1000;
  const cpu = workers.reduce((sum, w, i) => sum + cpuSeconds(w.child.pid!) - cpu0[i]!, 0);
  await stopAll(workers);
  const store = await o.meter?.end(jobs, polls);
  if (o.sizeNote !== undefined) await noteSize(rig, o.sizeNote);
  await sim.stop();
  return { jobsPerS: jobs / elapsed, cpuMsPerJob: (cpu * 1000) / jobs, ...(store ? { store } : {}) };
}

const NAIVE_TABLE = "CREATE TABLE IF NOT EXISTS naive_results (id text PRIMARY KEY, output text, finished_at timestamptz DEFAULT now())";

async function naiveRun(rig: Rig, jobs: number): Promise<number> {
  const sim = await startSimProcess(SIM_FLAGS);
  await rig.pool.query("DROP TABLE IF EXISTS naive_results");
  // Created here, once: two processes racing CREATE TABLE IF NOT EXISTS can both try to insert the row type (23505).
  await rig.pool.query(NAIVE_TABLE);
  const queueUrl = await freshQueue(rig, "naive");
  const env = { ...process.env, QUEUE_URL: queueUrl, SQS_ENDPOINT: rig.endpoint, DATABASE_URL: rig.dbUrl, VLLM_URL: sim.url };
  const procs = Array.from({ length: PROCESSES }, () =>
    spawn(process.execPath, ["--import", "tsx", resolve(ROOT, "scripts/bench/naive-worker.ts")], { cwd: ROOT, env, stdio: ["ignore", "ignore", "inherit", "ipc"] }),
  );
  // A naive worker that dies before it is ready fails the bench instead of leaving it waiting forever.
  await Promise.all(procs.map((p) => new Promise<void>((r, j) => (p.once("message", () => r()), p.once("exit", (code) => j(new Error(`naive worker exited (${code}) before it was ready`)))))));
  const t0 = Date.now();
  await submit(rig, queueUrl, jobs);
  await waitDone(rig.pool, "naive_results", jobs);
  const elapsed = (Date.now() - t0) / 1000;
  await Promise.all(procs.map((p) => new Promise<void>((r) => (p.once("exit", () => r()), p.kill("SIGTERM")))));
  await sim.stop();
  return jobs / elapsed;
}

/**
 * One worker's RSS with `n` jobs in flight. The simulator runs at most max-num-seqs (1,024) at once and queues the
 * rest without bound (max-num-queued-reqs 0), so every job the worker holds is an open request it can count.
 */
async function rssInFlight(rig: Rig, n: number, concurrency: number): Promise<number> {
  // Long generations so `n` jobs stay in flight while we read the worker's memory.
  const sim = await startSimProcess([...SIM_FLAGS, "--early-stop-rate", "0"]);
  await rig.pool.query("TRUNCATE jobs");
  const queueUrl = await freshQueue(rig, `rss${n}`);
  await submit(rig, queueUrl, n, (i) => ({ ...input(i), params: { max_tokens: 4000 } }));
  const w = spawnWorker(`bench-rss-${n}`, workerEnv(rig, queueUrl, sim.url, { WORKER_CONCURRENCY: String(concurrency), ADAPTIVE_CONCURRENCY: "false" }), resolve(ROOT, "out/bench-logs"), WORKER_FLAGS, "dist");
  await w.ready;
  const probe = new VllmClient({ baseUrl: sim.url, model: "x", timeoutMs: 5000 });
  for (const until = Date.now() + 180_000; ; ) {
    const load = await probe.metrics();
    if (load !== undefined && load.running + load.waiting >= n) break;
    if (Date.now() > until) throw new Error(`rss: ${n} jobs never reached the simulator at once (${JSON.stringify(load)})`);
    await delay(100);
  }
  await delay(500);
  const rss = rssMb(w.child.pid!);
  await probe.close();
  w.kill("SIGKILL");
  await w.exited;
  await sim.stop();
  return rss;
}

async function main(): Promise<void> {
  // Workers run as in production: the bundle (make build), not TypeScript through tsx.
  await buildDist();
  const emulator = await startEmulator({ port: 0 });
  const queue = new SqsQueue({ region: "us-east-1", endpoint: emulator.endpoint });
  const schema = `bench_${Date.now().toString(36)}`;
  // A database of its own, so its deadlock counter (kept per database) counts this run only.
  const scratch = await createScratchDatabase(PG_URL, schema);
  if (scratch === undefined) log("could not create a scratch database: deadlocks are counted over the shared one");
  const dbUrl = scratch?.url ?? PG_URL;
  const pool = await createPool({ url: dbUrl, poolSize: 4, schema });
  await migrate(pool);
  const deadlocksBefore = await deadlockCount(pool);
  const rig: Rig = { endpoint: emulator.endpoint, queue, pool, dbUrl: schemaScopedUrl(dbUrl, schema), sizes: [] };
  let poolEnded = false;
  try {
    await noteSize(rig, "empty");
    log(`simulator: ${SIM_FLAGS.join(" ")}, max_tokens ${MAX_TOKENS}; ${PROCESSES} worker processes`);
    const parts = new Set(a.only!.split(","));
    let capacity = NaN;
    let bestC = 0;
    let fleet: { jobsPerS: number; cpuMsPerJob: number; store?: StoreCost } = { jobsPerS: NaN, cpuMsPerJob: NaN };
    if (parts.has("capacity") || parts.has("naive")) {
      const direct: [number, number][] = [];
      for (const c of parts.has("capacity") ? [256, 512, 1024, 2048] : []) {
        const sim = await startSimProcess(SIM_FLAGS);
        direct.push([c, await driveDirect(sim.url, c, Number(a.jobs), request)]);
        await sim.stop();
        log(`direct drive at concurrency ${c}: ${round(direct.at(-1)![1])} jobs/s`);
      }
      if (direct.length > 0) [bestC, capacity] = direct.reduce((x, y) => (y[1] > x[1] ? y : x));
      // Metered too: at the simulator's pace batches are smaller than against the instant backend.
      const meter = parts.has("storecost") ? new StoreCostMeter(rig.dbUrl) : undefined;
      fleet = await fleetRun(rig, Number(a.jobs), SIM_FLAGS, { sizeNote: "after the fleet run", ...(meter ? { meter } : {}) });
      log(`fleet: ${round(fleet.jobsPerS)} jobs/s`);
    }
    const naive = parts.has("naive") ? await naiveRun(rig, Number(a["naive-jobs"])) : NaN;
    if (parts.has("naive")) log(`naive sqs-consumer: ${round(naive)} jobs/s`);
    // Store cost is counted in the overhead run when there is one (counters only: no cost to the run), else in its own.
    const meter = parts.has("storecost") ? new StoreCostMeter(rig.dbUrl) : undefined;
    const overhead: SingleRun = parts.has("overhead") ? await fleetRunSingle(rig, { meter }) : { jobsPerS: NaN, cpuMsPerJob: NaN, rssPeakMb: NaN };
    if (parts.has("overhead")) log(`instant backend, 1 process: ${round(overhead.jobsPerS)} jobs/s, ${round(overhead.cpuMsPerJob, 3)} CPU ms/job, peak RSS ${round(overhead.rssPeakMb)} MiB`);
    const storeJobs = parts.has("overhead") ? Number(a["overhead-jobs"]) : Number(a["storecost-jobs"]);
    const storeRun = meter && (parts.has("overhead") ? overhead : await fleetRunSingle(rig, { meter, jobs: storeJobs, name: "storecost" }));
    const store = storeRun?.store;
    // The peak RSS of a worker saturated on the instant backend: the overhead run's, else the store-cost run's.
    const rssSustained = storeRun?.rssPeakMb ?? overhead.rssPeakMb;
    if (store) log(`store: ${round(store.statementsPerJob, 3)} statements, ${round(store.rowsPerJob, 2)} rows, ${Math.round(store.walBytesPerJob)} WAL bytes per job (${storeJobs} jobs)`);
    if (store && store.otherDatabasesStatements > 0) log(`store: other databases committed ${store.otherDatabasesStatements} transactions meanwhile; WAL bytes include theirs`);
    const rss = parts.has("rss") ? await rssInFlight(rig, 1000, 1024) : NaN;
    if (parts.has("rss")) log(`RSS at 1,000 in flight: ${round(rss)} MiB`);
    const router = parts.has("router") ? await measureRouterOverhead(Number(a["router-calls"]), request) : undefined;
    if (router) log(`router: ${round(router.routerUsPerJob, 2)} µs/job over a direct call (${round(router.directUsPerJob, 2)} µs), ${router.n} calls a round`);
    const observability = parts.has("observability") ? await observabilityRun(rig) : undefined;
    if (observability) log(`observability: ${round(observability.onMsPerJob, 3)} CPU ms/job on, ${round(observability.offMsPerJob, 3)} off`);
    const fallback = parts.has("fallback") ? await fallbackRun(rig) : undefined;
    if (fallback) log(`fallback only: ${round(fallback.jobsPerS)} jobs/s, ${fallback.succeeded}/${fallback.jobs} succeeded, ${JSON.stringify(fallback.providers)}, $${fallback.costUsd}`);
    const mixed8b = parts.has("mixed") ? await mixedRun(rig, "llama-3.1-8b-h100", Number(a["mixed-jobs-8b"])) : undefined;
    const mixed70b = parts.has("mixed") ? await mixedRun(rig, "llama-3.1-70b-8xh100", Number(a["mixed-jobs-70b"])) : undefined;
    const sqsProxy = parts.has("sqscost") ? await startCountingProxy(rig.endpoint) : undefined;
    let idle: Awaited<ReturnType<typeof idleRun>> | undefined;
    let sqs: Awaited<ReturnType<typeof sqsCostRun>> | undefined;
    try {
      idle = parts.has("idle") ? await idleRun(rig, sqsProxy) : undefined;
      if (idle) log(`idle: +${round(idle.latency.addedP50, 2)} ms p50, +${round(idle.latency.addedP99, 2)} ms p99 over the provider's ${round(idle.latency.providerP50, 1)} ms (${idle.latency.jobs} jobs)`);
      sqs = sqsProxy ? await sqsCostRun(rig, sqsProxy) : undefined;
    } finally {
      await sqsProxy?.close();
    }
    if (sqs) log(`sqs: worker ${JSON.stringify(sqs.worker.byKind)}, producer ${JSON.stringify(sqs.producer.byKind)} for ${sqs.jobs} jobs`);
    const rss10k = parts.has("rss10k") ? await rssInFlight(rig, Number(a["rss-many"]), Number(a["rss-many"])) : NaN;
    if (parts.has("rss10k")) log(`RSS at ${a["rss-many"]} in flight: ${round(rss10k)} MiB`);
    const sqsWorker = sqs && perJob(sqs.worker, sqs.jobs);
    const sqsProducer = sqs && perJob(sqs.producer, sqs.jobs);
    const sqsLow = idle?.calls && perJob(idle.calls, idle.latency.jobs);
    if ([sqs?.worker, sqs?.producer, idle?.calls].some((c) => c?.byKind.unknown !== undefined)) log("sqs: some calls named no operation (no X-Amz-Target, no Action=): counted as unknown");
    // Every worker has exited; their sessions report their statistics as they end (scratch.finish waits for that).
    let deadlocksAfter = scratch === undefined ? await deadlockCount(pool) : undefined;
    await pool.end();
    poolEnded = true;
    deadlocksAfter ??= await scratch!.finish(false);
    const deadlocks = deadlocksAfter - deadlocksBefore;

    const result = {
      capacity_ratio: round(fleet.jobsPerS / capacity, 3),
      vs_naive: round(fleet.jobsPerS / naive, 2),
      overhead_ms_per_job: round(overhead.cpuMsPerJob, 3),
      jobs_per_s_per_process: Math.round(overhead.jobsPerS),
      rss_mb: round(rss, 1),
      capacity_ratio_mixed_8b: round(mixed8b?.ratio ?? NaN, 3),
      capacity_ratio_mixed_70b: round(mixed70b?.ratio ?? NaN, 3),
      idle_added_ms_p50: round(idle?.latency.addedP50 ?? NaN, 2),
      idle_added_ms_p99: round(idle?.latency.addedP99 ?? NaN, 2),
      pg_statements_per_job: round(store?.statementsPerJob ?? NaN, 3),
      sqs_calls_per_job: round(sqsWorker?.callsPerJob ?? NaN, 3),
      rss_mb_10k: round(rss10k, 1),
      rss_mb_sustained: round(rssSustained, 1),
    };
    const costFigures = {
      mixed: Object.fromEntries([mixed8b, mixed70b].flatMap((m) => (m ? [[m.profile, mixedSummary(m)]] : []))),
      idle_steps_ms_p50: idle
        ? { receive_claim: round(idle.latency.receiveClaimP50, 2), call_overhead_complete: round(idle.latency.callCompleteP50, 2), publish_read: round(idle.latency.publishReadP50, 2), provider: round(idle.latency.providerP50, 2) }
        : null,
      pg_rows_written_per_job: round(store?.rowsPerJob ?? NaN, 3),
      pg_wal_bytes_per_job: Math.round(store?.walBytesPerJob ?? NaN),
      pg_other_databases_transactions: store?.otherDatabasesStatements ?? null,
      // The fleet run against the 8B simulator: the per-process pace a GPU instance sets (what the fleet table uses).
      pg_statements_per_job_at_capacity: round(fleet.store?.statementsPerJob ?? NaN, 3),
      pg_rows_written_per_job_at_capacity: round(fleet.store?.rowsPerJob ?? NaN, 3),
      pg_wal_bytes_per_job_at_capacity: Math.round(fleet.store?.walBytesPerJob ?? NaN),
      sqs_calls_per_job_by_kind: sqsWorker?.byKind ?? null,
      sqs_producer_calls_per_job_by_kind: sqsProducer?.byKind ?? null,
      sqs_calls_per_job_low_load: round(sqsLow?.callsPerJob ?? NaN, 3),
      sqs_calls_per_job_low_load_by_kind: sqsLow?.byKind ?? null,
      sqs_usd_per_million_jobs: round(((sqsWorker?.billedPerJob ?? NaN) + (sqsProducer?.billedPerJob ?? NaN)) * 1_000_000 * SQS_USD_PER_REQUEST, 3),
      sqs_usd_per_million_requests: SQS_USD_PER_REQUEST * 1_000_000,
    };
    // Reported beside the targets, not judged: the issue sets no bar for them.
    const routerUs = router?.routerUsPerJob ?? NaN;
    const providerFigures = {
      router_us_per_job: round(routerUs, 2),
      router_share_of_overhead: round(routerUs / (overhead.cpuMsPerJob * 1000), 4),
      fallback_jobs_per_s: round(fallback?.jobsPerS ?? NaN),
      fallback_jobs: fallback?.jobs ?? null,
      fallback_succeeded: fallback?.succeeded ?? null,
      fallback_providers: fallback?.providers ?? null,
      fallback_cost_usd: fallback === undefined ? null : round(fallback.costUsd, 6),
      observability_on_ms_per_job: round(observability?.onMsPerJob ?? NaN, 3),
      observability_off_ms_per_job: round(observability?.offMsPerJob ?? NaN, 3),
      observability_ms_per_job: round((observability?.onMsPerJob ?? NaN) - (observability?.offMsPerJob ?? NaN), 3),
    };
    const targets = {
      capacity_ratio: result.capacity_ratio >= 0.97,
      vs_naive: result.vs_naive >= 5,
      overhead_ms_per_job: result.overhead_ms_per_job <= 1,
      jobs_per_s_per_process: result.jobs_per_s_per_process >= 3000,
      rss_mb: result.rss_mb <= 150,
      capacity_ratio_mixed_8b: result.capacity_ratio_mixed_8b >= 0.97,
      capacity_ratio_mixed_70b: result.capacity_ratio_mixed_70b >= 0.97,
      idle_added_ms_p50: result.idle_added_ms_p50 <= 20,
      idle_added_ms_p99: result.idle_added_ms_p99 <= 60,
      pg_statements_per_job: result.pg_statements_per_job <= 3,
      rss_mb_sustained: result.rss_mb_sustained <= 150,
    };
    const rows: Row[] = [
      ["simulator capacity (direct, best concurrency)", `${round(capacity)} jobs/s at ${bestC}`, "", ""],
      ["fleet throughput", `${round(fleet.jobsPerS)} jobs/s`, "", ""],
      ["naive sqs-consumer throughput", `${round(naive)} jobs/s`, "", ""],
      ["capacity_ratio", String(result.capacity_ratio), "≥ 0.97", verdict(result.capacity_ratio, targets.capacity_ratio)],
      ["vs_naive", String(result.vs_naive), "≥ 5", verdict(result.vs_naive, targets.vs_naive)],
      ["overhead_ms_per_job (instant backend)", String(result.overhead_ms_per_job), "≤ 1", verdict(result.overhead_ms_per_job, targets.overhead_ms_per_job)],
      ["jobs_per_s_per_process (instant backend)", String(result.jobs_per_s_per_process), "≥ 3000", verdict(result.jobs_per_s_per_process, targets.jobs_per_s_per_process)],
      ["rss_mb at 1,000 in flight", String(result.rss_mb), "≤ 150", verdict(result.rss_mb, targets.rss_mb)],
      ["router_us_per_job (in-process, over a direct call)", String(providerFigures.router_us_per_job), "", measured(routerUs)],
      ["router share of overhead_ms_per_job", String(providerFigures.router_share_of_overhead), "", measured(providerFigures.router_share_of_overhead)],
      ["fallback_jobs_per_s (vLLM down, Ollama + Gemini)", String(providerFigures.fallback_jobs_per_s), "", measured(providerFigures.fallback_jobs_per_s)],
      ["fallback jobs succeeded", fallback ? `${fallback.succeeded}/${fallback.jobs}` : "NaN", "all", fallback ? (fallback.succeeded === fallback.jobs ? "met" : "MISSED") : "not measured"],
      ["fallback_providers (jobs answered)", fallback ? Object.entries(fallback.providers).map(([p, n]) => `${p} ${n}`).join(", ") : "NaN", "", fallback ? "" : "not measured"],
      ["fallback_cost_usd", String(providerFigures.fallback_cost_usd ?? NaN), "", fallback ? "" : "not measured"],
      ["CPU ms/job, metrics on + info logs (instant)", String(providerFigures.observability_on_ms_per_job), "≤ 1", verdict(providerFigures.observability_on_ms_per_job, providerFigures.observability_on_ms_per_job <= 1)],
      ["CPU ms/job, metrics off + warn logs (instant)", String(providerFigures.observability_off_ms_per_job), "≤ 1", verdict(providerFigures.observability_off_ms_per_job, providerFigures.observability_off_ms_per_job <= 1)],
      ["observability_ms_per_job (on − off)", String(providerFigures.observability_ms_per_job), "", measured(providerFigures.observability_ms_per_job)],
      ...[mixed8b, mixed70b].map((m, i): Row => {
        const key = i === 0 ? "capacity_ratio_mixed_8b" : "capacity_ratio_mixed_70b";
        const detail = m ? ` (${round(m.fleetJobsPerS)} ÷ ${round(m.capacityJobsPerS)} at ${m.bestConcurrency})` : "";
        return [`${key} (chat-like lengths)`, `${result[key]}${detail}`, "≥ 0.97", verdict(result[key], targets[key])];
      }),
      ["idle_added_ms_p50 (1 job at a time, idle worker)", String(result.idle_added_ms_p50), "≤ 20", verdict(result.idle_added_ms_p50, targets.idle_added_ms_p50)],
      ["idle_added_ms_p99", String(result.idle_added_ms_p99), "≤ 60", verdict(result.idle_added_ms_p99, targets.idle_added_ms_p99)],
      ["  p50 steps: receive+claim / call+complete / publish+read", idle ? `${costFigures.idle_steps_ms_p50!.receive_claim} / ${costFigures.idle_steps_ms_p50!.call_overhead_complete} / ${costFigures.idle_steps_ms_p50!.publish_read} ms` : "NaN", "", idle ? "" : "not measured"],
      ["pg_statements_per_job (instant backend, saturated)", String(result.pg_statements_per_job), "≤ 3", verdict(result.pg_statements_per_job, targets.pg_statements_per_job)],
      ["pg_rows_written_per_job", String(costFigures.pg_rows_written_per_job), "", measured(costFigures.pg_rows_written_per_job)],
      ["pg statements / rows / WAL B per job at the simulator's pace", `${costFigures.pg_statements_per_job_at_capacity} / ${costFigures.pg_rows_written_per_job_at_capacity} / ${costFigures.pg_wal_bytes_per_job_at_capacity}`, "≤ 3", verdict(costFigures.pg_statements_per_job_at_capacity, costFigures.pg_statements_per_job_at_capacity <= 3)],
      ["pg_wal_bytes_per_job (cluster-wide WAL)", String(costFigures.pg_wal_bytes_per_job), "", measured(costFigures.pg_wal_bytes_per_job)],
      ["sqs_calls_per_job (worker, saturated)", String(result.sqs_calls_per_job), "", measured(result.sqs_calls_per_job)],
      ["  by kind", sqsWorker ? kinds(sqsWorker.byKind) : "NaN", "", sqsWorker ? "" : "not measured"],
      ["  producer's calls per job", sqsProducer ? kinds(sqsProducer.byKind) : "NaN", "", sqsProducer ? "" : "not measured"],
      ["sqs_calls_per_job_low_load (worker, idle run)", String(costFigures.sqs_calls_per_job_low_load), "", measured(costFigures.sqs_calls_per_job_low_load)],
      ["  by kind", sqsLow ? kinds(sqsLow.byKind) : "NaN", "", sqsLow ? "" : "not measured"],
      [`sqs_usd_per_million_jobs (saturated, $${costFigures.sqs_usd_per_million_requests}/M requests)`, String(costFigures.sqs_usd_per_million_jobs), "", measured(costFigures.sqs_usd_per_million_jobs)],
      [`rss_mb_10k (${a["rss-many"]} in flight)`, String(result.rss_mb_10k), "", measured(result.rss_mb_10k)],
      ["rss_mb_sustained (peak, instant-backend run)", String(result.rss_mb_sustained), "≤ 150", verdict(result.rss_mb_sustained, targets.rss_mb_sustained)],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    for (const [name, value, target, verdict] of rows) process.stdout.write(`${name.padEnd(width)}  ${value.padEnd(24)} ${target.padEnd(8)} ${verdict}\n`);
    process.stdout.write(`${"deadlocks (Postgres, whole run)".padEnd(width)}  ${String(deadlocks).padEnd(24)} ${"0".padEnd(8)} ${deadlocks === 0 ? "met" : "MISSED"}\n`);
    const mb = (n: number) => `${round(n / 1048576, 2)} MB`;
    for (const { at, jobs, bytes } of rig.sizes) {
      process.stdout.write(`jobs table ${at} (${jobs} rows): total ${mb(bytes.total)}, heap ${mb(bytes.heap)}, indexes ${mb(bytes.indexes)}${jobs > 0 ? `, ${Math.round(bytes.total / jobs)} B/row` : ""}\n`);
    }
    const steps = costFigures.idle_steps_ms_p50;
    for (const line of limits({ ...result, ...(steps ? { idle_receive_claim_ms: steps.receive_claim, idle_call_complete_ms: steps.call_overhead_complete, idle_publish_read_ms: steps.publish_read } : {}) }, targets)) process.stdout.write(`note: ${line}\n`);
    mkdirSync(resolve(ROOT, "out"), { recursive: true });
    writeFileSync(resolve(ROOT, "out/bench.json"), `${JSON.stringify({ ...result, ...providerFigures, ...costFigures, fleet_jobs_per_s: round(fleet.jobsPerS), simulator_jobs_per_s: round(capacity), naive_jobs_per_s: round(naive), max_tokens: MAX_TOKENS, processes: PROCESSES, deadlocks, jobs_table: rig.sizes, targets }, null, 2)}\n`);
    const jobsTable = rig.sizes.map(({ at, jobs, bytes }) => ({ at, jobs, ...bytes }));
    process.stdout.write(`${JSON.stringify({ ...result, ...providerFigures, ...costFigures, deadlocks, jobs_table: jobsTable, targets_met: Object.values(targets).every(Boolean) && deadlocks === 0 })}\n`);
  } finally {
    if (!poolEnded) {
      if (scratch === undefined) await pool.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
      await scratch?.finish(false).catch(() => undefined);
    } else if (scratch === undefined) {
      await dropSchema(schema);
    }
    queue.close();
    await emulator.stop();
  }
}

/** The run's schema in the shared database, once the run's own pool is gone. */
async function dropSchema(schema: string): Promise<void> {
  const pool = await createPool({ url: PG_URL, poolSize: 1 });
  await pool.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
  await pool.end();
}

/** What limits each missed figure, from what this run measured. */
function limits(r: Record<string, number>, met: Record<string, boolean>): string[] {
  const out: string[] = [];
  if (!met.jobs_per_s_per_process && !Number.isNaN(r.jobs_per_s_per_process!)) {
    out.push(
      `jobs_per_s_per_process: the worker is CPU-bound at ${r.overhead_ms_per_job} ms/job (one core: ≤ ${Math.round(1000 / r.overhead_ms_per_job!)} jobs/s), ` +
        "and on this 2-core machine the SQS emulator, the simulator and Postgres run beside it on the same cores; " +
        "most of that CPU is the AWS SDK's request pipeline and loopback socket writes (pg, HTTP), not the fleet's bookkeeping",
    );
  }
  if (!met.capacity_ratio && !Number.isNaN(r.capacity_ratio!)) out.push("capacity_ratio: the fleet and the simulator share 2 cores; see out/bench-logs for worker warnings");
  if (!met.rss_mb && !Number.isNaN(r.rss_mb!)) out.push("rss_mb: ~1 HTTP connection and its buffers per job in flight on top of ~80 MiB of runtime and SDKs");
  if ((!met.idle_added_ms_p50 || !met.idle_added_ms_p99) && r.idle_receive_claim_ms !== undefined) {
    out.push(`idle latency: p50 steps receive+claim ${r.idle_receive_claim_ms} ms, call+complete ${r.idle_call_complete_ms} ms, publish+read ${r.idle_publish_read_ms} ms; the store's micro-batches linger 5 ms before each write (worker/durable-store.ts)`);
  }
  return out;
}

type Row = [name: string, value: string, target: string, verdict: string];

/** Calls per job by kind, one line: "ReceiveMessage 0.12, DeleteMessageBatch 0.1". */
function kinds(byKind: Record<string, number>): string {
  return Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(", ");
}

function mixedSummary(m: MixedResult): Record<string, unknown> {
  return {
    jobs: m.jobs,
    simulator_jobs_per_s: round(m.capacityJobsPerS, 2),
    best_concurrency: m.bestConcurrency,
    direct: Object.fromEntries(m.direct.map(([c, j]) => [c, round(j, 2)])),
    fleet_jobs_per_s: round(m.fleetJobsPerS, 2),
    mean_prompt_tokens: Math.round(m.meanPromptTokens),
    mean_answer_tokens: Math.round(m.meanAnswerTokens),
  };
}

/** For figures with no target: blank once measured. */
function measured(value: number): string {
  return Number.isNaN(value) ? "not measured" : "";
}

function verdict(value: number, met: boolean): string {
  return Number.isNaN(value) ? "not measured" : met ? "met" : "MISSED";
}

interface SingleRun {
  jobsPerS: number;
  cpuMsPerJob: number;
  /** The worker's peak RSS during the run, MiB (sampled every 200 ms). */
  rssPeakMb: number;
  /** Set when a StoreCostMeter was given. */
  store?: StoreCost;
}

/** One worker process against the instant backend: our own cost per job; `meter` also counts its Postgres work. */
async function fleetRunSingle(rig: Rig, o: { jobs?: number; env?: Record<string, string>; name?: string; meter?: StoreCostMeter; producerQueue?: SqsQueue } = {}): Promise<SingleRun> {
  const jobs = o.jobs ?? Number(a["overhead-jobs"]);
  const name = o.name ?? "overhead";
  const sim = await startSimProcess(["--profile", "instant"]);
  await rig.pool.query("TRUNCATE jobs");
  const queueUrl = await freshQueue(rig, name);
  await submit(rig, queueUrl, jobs, input, o.producerQueue);
  await o.meter?.begin();
  const w = spawnWorker(`bench-${name}`, workerEnv(rig, queueUrl, sim.url, o.env), resolve(ROOT, "out/bench-logs"), WORKER_FLAGS, "dist");
  await w.ready;
  const cpu0 = cpuSeconds(w.child.pid!);
  let rssPeakMb = rssMb(w.child.pid!);
  const sampler = setInterval(() => (rssPeakMb = Math.max(rssPeakMb, rssMb(w.child.pid!))), 200);
  const t0 = Date.now();
  const polls = await waitDone(rig.pool, "jobs", jobs).finally(() => clearInterval(sampler));
  const elapsed = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(w.child.pid!) - cpu0;
  await stopAll([w]);
  const store = await o.meter?.end(jobs, polls);
  if (name === "overhead") await noteSize(rig, "after the overhead run");
  await sim.stop();
  return { jobsPerS: jobs / elapsed, cpuMsPerJob: (cpu * 1000) / jobs, rssPeakMb, ...(store ? { store } : {}) };
}

/**
 * Metrics and logging's cost: the overhead run with every sink on (Datadog and CloudWatch to local stand-ins in this
 * process, so their HTTP servers' CPU is not the worker's) and info logs, against METRICS=off with the bench's warn
 * logs; rounds alternate so drift on the shared machine falls on both. Mean CPU ms per job of each.
 */
async function observabilityRun(rig: Rig): Promise<{ onMsPerJob: number; offMsPerJob: number }> {
  const jobs = Number(a["observability-jobs"]);
  const datadog = await startDatadogStandIn();
  const cloudwatch = await startCloudWatchStandIn();
  const on = {
    METRICS: "on",
    LOG_LEVEL: "info",
    DATADOG_API_KEY: "bench-key",
    DATADOG_API_URL: datadog.endpoint,
    CLOUDWATCH_METRICS: "true",
    CLOUDWATCH_ENDPOINT: cloudwatch.endpoint,
    CLOUDWATCH_FLUSH_INTERVAL_MS: "10000",
  };
  const off = { METRICS: "off", LOG_LEVEL: "warn" };
  const runs = { on: [] as number[], off: [] as number[] };
  try {
    for (let round = 0; round < Number(a["observability-rounds"]); round++) {
      for (const [label, env] of [["off", off], ["on", on]] as const) {
        const r = await fleetRunSingle(rig, { jobs, env, name: `observability-${label}` });
        runs[label].push(r.cpuMsPerJob);
        log(`observability ${label}, round ${round + 1}: ${r.cpuMsPerJob.toFixed(3)} CPU ms/job, ${Math.round(r.jobsPerS)} jobs/s`);
      }
    }
    if (datadog.received.length === 0 || cloudwatch.received.length === 0) log("observability: a push sink's stand-in received nothing; the 'on' figure may lack its cost");
  } finally {
    await datadog.close();
    await cloudwatch.close();
  }
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  return { onMsPerJob: mean(runs.on), offMsPerJob: mean(runs.off) };
}

/** capacity_ratio on chat-like lengths for one simulator profile (bench/mixed-workload.ts). */
function mixedRun(rig: Rig, profile: ProfileName, jobs: number): Promise<MixedResult> {
  const concurrencies = a["mixed-concurrency"]!.split(",").map(Number);
  const fleet: FleetRun = async (inputs, simFlags, env) => (await fleetRun(rig, inputs.length, simFlags, { env, make: (i) => inputs[i]! })).jobsPerS;
  return measureMixed({ profile, jobs, concurrencies, seed: 20240601, fleet, log });
}

/**
 * One worker on the instant backend, long-polling an empty queue, then jobs one at a time (bench/idle-latency.ts).
 * With `sqs`, the worker talks to SQS through that counting proxy (one more loopback hop, well under a millisecond
 * a call) and its calls during the jobs are returned: SQS's cost per job at low load.
 */
async function idleRun(rig: Rig, sqs?: CountingProxy): Promise<{ latency: IdleLatency; calls?: SqsCalls }> {
  const sim = await startSimProcess(["--profile", "instant"]);
  await rig.pool.query("TRUNCATE jobs");
  const queueUrl = await freshQueue(rig, "idle");
  const w = spawnWorker("bench-idle", workerEnv(rig, queueUrl, sim.url, sqs ? { SQS_ENDPOINT: sqs.url } : {}), resolve(ROOT, "out/bench-logs"), WORKER_FLAGS, "dist");
  try {
    await w.ready;
    await delay(1000); // its long polls are out and waiting
    sqs?.reset();
    const producer = new Producer({ queue: rig.queue, queueUrl });
    const latency = await measureIdleLatency({ url: rig.dbUrl, producer, jobs: Number(a["idle-jobs"]), input });
    await delay(200); // the last job's delete (ACK_FLUSH_MS later)
    return { latency, ...(sqs ? { calls: sqs.counts() } : {}) };
  } finally {
    await stopAll([w]);
    await sim.stop();
  }
}

/** SQS calls per job at saturation: the instant-backend run with the worker and the producer each behind a counting proxy. */
async function sqsCostRun(rig: Rig, worker: CountingProxy): Promise<{ jobs: number; worker: SqsCalls; producer: SqsCalls }> {
  const jobs = Number(a["sqscost-jobs"]);
  const producerProxy = await startCountingProxy(rig.endpoint);
  const producerQueue = new SqsQueue({ region: "us-east-1", endpoint: producerProxy.url });
  try {
    worker.reset();
    await fleetRunSingle(rig, { jobs, name: "sqscost", env: { SQS_ENDPOINT: worker.url }, producerQueue });
    return { jobs, worker: worker.counts(), producer: producerProxy.counts() };
  } finally {
    producerQueue.close();
    await producerProxy.close();
  }
}

/** The fleet on the fallback chain only (vLLM unreachable): throughput, who answered, what it cost. */
async function fallbackRun(rig: Rig): Promise<FallbackResult> {
  const jobs = Number(a["fallback-jobs"]);
  const standIns = await startFallbackStandIns(SIM_FLAGS);
  await rig.pool.query("TRUNCATE jobs");
  const queueUrl = await freshQueue(rig, "fallback");
  const extra = Object.fromEntries(a["fallback-env"]!.split(" ").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  const env = workerEnv(rig, queueUrl, standIns.env.VLLM_URL!, { ...standIns.env, ...extra });
  const workers = Array.from({ length: PROCESSES }, (_, i) => spawnWorker(`bench-fallback-${i}`, env, resolve(ROOT, "out/bench-logs"), WORKER_FLAGS, "dist"));
  try {
    await Promise.all(workers.map((w) => w.ready));
    const t0 = Date.now();
    await submit(rig, queueUrl, jobs);
    // Bounded: a job the chain cannot answer goes back to the queue, and the run must still end and say so.
    const succeeded = await waitFinal(rig.pool, jobs, 300_000);
    const elapsed = (Date.now() - t0) / 1000;
    return { jobsPerS: succeeded / elapsed, jobs, succeeded, ...(await providerSplit(rig.pool)) };
  } finally {
    await stopAll(workers);
    await standIns.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
