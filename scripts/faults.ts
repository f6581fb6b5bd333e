/**
 * `make faults`: the real fleet through real faults, then an audit of the store and the queues.
 * Several worker processes, the SQS emulator, Postgres behind a TCP fault proxy, the vLLM simulator. During the
 * run: kill -9 of random workers mid-batch, the simulator gone for a while, Postgres cut, ~1 % poison messages of
 * several kinds, and a SIGTERM drain of one worker. Last line: one JSON object; exit 1 when anything was lost or
 * written twice.
 *   --jobs 10000 --workers 4 --kills 5 --sim-down-ms 30000 --pg-cut-ms 10000 --poison-rate 0.01 --visibility 20
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { runCleanup, type CleanupStep } from "../shared/shutdown.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { startEmulator } from "./local/sqs-emulator.ts";
import { createPool, schemaScopedUrl } from "../shared/store/pool.ts";
import { migrate } from "../shared/store/migrate.ts";
import { Producer } from "../producer/producer.ts";
import { jobIdOf, type JobInput } from "../shared/contract.ts";
import { startVllmSimulator, type RunningSimulator } from "./simulators/vllm/server.ts";
import { startFaultProxy } from "./fleet/tcp-proxy.ts";
import { spawnWorker, type WorkerProcess } from "./fleet/worker-process.ts";
import { poisonBodies } from "./fleet/poison-bodies.ts";
import { delay } from "../shared/backoff.ts";
import { round } from "./fleet/stats.ts";

const { values: a } = parseArgs({
  options: {
    jobs: { type: "string", default: "10000" },
    workers: { type: "string", default: "4" },
    kills: { type: "string", default: "5" },
    "sim-down-ms": { type: "string", default: "30000" },
    "pg-cut-ms": { type: "string", default: "10000" },
    "poison-rate": { type: "string", default: "0.01" },
    visibility: { type: "string", default: "20" },
    "time-scale": { type: "string", default: "1" },
    "timeout-s": { type: "string", default: "1200" },
  },
});
const JOBS = Number(a.jobs);
const WORKERS = Number(a.workers);
const KILLS = Number(a.kills);
const VISIBILITY = Number(a.visibility);
const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const log = (line: string) => process.stderr.write(`[faults ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function main(): Promise<number> {
  const cleanup: CleanupStep[] = [];
  try {
    const schema = `faults_${Date.now().toString(36)}`;
    const pool = await createPool({ url: PG_URL, poolSize: 4, schema });
    cleanup.push(async () => {
      if (!process.env.FAULTS_KEEP_SCHEMA) await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    });
    await migrate(pool);
    const pg = new URL(PG_URL);
    const proxy = await startFaultProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
    cleanup.push(() => proxy.close());
    const viaProxy = new URL(PG_URL);
    viaProxy.port = String(proxy.port);
    const workerDbUrl = schemaScopedUrl(viaProxy.toString(), schema);

    const emulator = await startEmulator({ port: 0 });
    cleanup.push(() => emulator.stop());
    const queue = new SqsQueue({ region: "us-east-1", endpoint: emulator.endpoint });
    cleanup.push(() => queue.close());
    const { queueUrl, dlqUrl } = await queue.ensureQueueWithDlq(`faults-${Date.now()}`, { visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: 5, waitTimeSeconds: 20 });

    const simOptions = { port: 0, timeScale: Number(a["time-scale"]), seed: 1 };
    let sim: RunningSimulator = await startVllmSimulator(simOptions);
    const simPort = sim.port;
    let servedBefore = 0;
    cleanup.push(() => sim.close());

    const env: Record<string, string> = {
      QUEUE_URLS: queueUrl,
      SQS_ENDPOINT: emulator.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "faults",
      AWS_SECRET_ACCESS_KEY: "faults",
      DATABASE_URL: workerDbUrl,
      DATABASE_POOL_SIZE: "5",
      VLLM_URL: sim.url,
      SQS_VISIBILITY_TIMEOUT_SECONDS: String(VISIBILITY),
      HEARTBEAT_INTERVAL_MS: String(Math.floor((VISIBILITY * 1000) / 4)),
      DRAIN_DEADLINE_MS: "10000",
      PROVIDER_TIMEOUT_MS: "60000",
      LOG_LEVEL: "warn",
    };
    const logDir = resolve(ROOT, "out/faults-logs");
    let spawned = 0;
    const workers = new Set<WorkerProcess>();
    const launch = () => {
      const w = spawnWorker(`worker-${++spawned}`, env, logDir);
      workers.add(w);
      void w.exited.then(() => workers.delete(w));
      return w;
    };
    cleanup.push(async () => {
      const all = [...workers];
      all.forEach((w) => w.kill("SIGTERM"));
      await Promise.all(all.map((w) => w.exited));
    });
    await Promise.all(Array.from({ length: WORKERS }, () => launch().ready));
    log(`${WORKERS} workers up; emulator ${emulator.endpoint}; simulator :${simPort}; Postgres via fault proxy :${proxy.port}; schema ${schema}`);

    // --- submit: valid jobs with poison messages mixed in ------------------------------------------------
    const producer = new Producer({ queue, queueUrl });
    const poisonCount = Math.round(JOBS * Number(a["poison-rate"]));
    const poison = poisonBodies(poisonCount);
    const validIds: string[] = [];
    const chunk = 500;
    for (let i = 0; i < JOBS - poisonCount; i += chunk) {
      const inputs: JobInput[] = Array.from({ length: Math.min(chunk, JOBS - poisonCount - i) }, (_, k) => ({
        tenant: `t${(i + k) % 7}`,
        messages: [{ role: "user", content: `fault suite job ${i + k}: tell me about number ${(i + k) * 7919}` }],
        params: { max_tokens: 16 + ((i + k) * 37) % 112 },
      }));
      const res = await producer.submitMany(inputs);
      if (res.failed.length > 0) throw new Error(`submit failed: ${res.failed[0]!.message}`);
      validIds.push(...res.ids);
      const share = poison.splice(0, Math.ceil((poisonCount * chunk) / JOBS));
      if (share.length > 0) await queue.sendBatch(queueUrl, share.map((p, k) => ({ id: String(k), body: p.body })));
    }
    if (poison.length > 0) await queue.sendBatch(queueUrl, poison.map((p, k) => ({ id: String(k), body: p.body })));
    const poisonAll = poisonBodies(poisonCount);
    const poisonWithId = poisonAll.flatMap((p) => (p.id ? [p.id] : []));
    const trackedIds = [...validIds, ...poisonWithId];
    log(`submitted ${validIds.length} jobs and ${poisonCount} poison messages (${poisonWithId.length} with a recoverable id)`);
    const t0 = Date.now();

    // --- faults, triggered by progress ----------------------------------------------------------------
    let done = 0;
    const progress = async () => {
      const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM jobs WHERE status NOT IN ('queued','running')");
      done = Number(rows[0]!.n);
      return done / trackedIds.length;
    };
    let kills = 0;
    let drainExit: number | null | undefined;
    const at = async (fraction: number) => {
      while ((await progress().catch(() => 0)) < fraction) await delay(250);
    };
    const killOne = async () => {
      const victim = [...workers][Math.floor(Math.random() * workers.size)]!;
      victim.kill("SIGKILL");
      await victim.exited;
      kills += 1;
      log(`kill -9 ${victim.name} (${kills}/${KILLS}); respawning`);
      await launch().ready;
    };
    const timeline = (async () => {
      const killPoints = Array.from({ length: KILLS }, (_, i) => 0.05 + (0.8 * i) / Math.max(1, KILLS));
      const events: [number, () => Promise<void>][] = [
        ...killPoints.map((p): [number, () => Promise<void>] => [p, killOne]),
        [0.15, async () => {
          servedBefore += sim.engine.stats().requestsServed;
          await sim.close();
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
          const w = [...workers][0]!;
          w.kill("SIGTERM");
          drainExit = (await w.exited).code;
          log(`SIGTERM drain of ${w.name}: exit ${drainExit}; respawning`);
          await launch().ready;
        }],
      ];
      events.sort((x, y) => x[0] - y[0]);
      for (const [fraction, run] of events) {
        await at(fraction);
        await run();
      }
    })();

    // --- wait until every tracked id is terminal and the main queue is empty -----------------------------
    const deadline = Date.now() + Number(a["timeout-s"]) * 1000;
    let lastLog = 0;
    for (;;) {
      await delay(1000);
      await progress().catch(() => 0);
      const depth = await queue.depth(queueUrl);
      if (Date.now() - lastLog > 5000) {
        log(`progress ${done}/${trackedIds.length} terminal; queue visible ${depth.visible} in flight ${depth.inFlight}`);
        lastLog = Date.now();
      }
      if (done >= trackedIds.length && depth.visible + depth.inFlight + depth.delayed === 0) break;
      if (Date.now() > deadline) {
        log("timed out waiting for the fleet");
        break;
      }
    }
    await timeline;
    const elapsed = (Date.now() - t0) / 1000;

    // --- audit --------------------------------------------------------------------------------------------
    const dlq = await drainQueue(queue, dlqUrl);
    const mainLeft = await drainQueue(queue, queueUrl);
    const dlqIds = new Set(dlq.flatMap((m) => (m.jobId ? [m.jobId] : [])));
    const leftIds = new Set(mainLeft.flatMap((m) => (m.jobId ? [m.jobId] : [])));
    const { rows } = await pool.query<{ id: string; status: string; result_writes: number; error_code: string | null }>(
      "SELECT id, status, result_writes, error_code FROM jobs WHERE id = ANY($1::text[])",
      [trackedIds],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const terminal = (id: string) => {
      const s = byId.get(id)?.status;
      return s !== undefined && s !== "queued" && s !== "running";
    };
    const lostIds = trackedIds.filter((id) => !terminal(id) && !dlqIds.has(id) && !leftIds.has(id));
    const noIdPoisonInDlq = dlq.filter((m) => m.jobId === undefined && m.failureCode !== undefined).length;
    const noIdPoison = poisonCount - poisonWithId.length;
    const lost = lostIds.length + Math.max(0, noIdPoison - noIdPoisonInDlq);
    const duplicates = rows.filter((r) => r.result_writes > 1).length;
    const succeeded = rows.filter((r) => r.status === "succeeded").length;
    const failedPoison = rows.filter((r) => r.status === "failed" && r.error_code?.startsWith("JOB_")).length + noIdPoisonInDlq;
    const dead = rows.filter((r) => r.status === "dead").length;
    const served = servedBefore + sim.engine.stats().requestsServed;

    const summary = {
      jobs: JOBS,
      succeeded,
      failed_poison: failedPoison,
      dead,
      lost,
      duplicates,
      kills,
      provider_calls_per_job: round(served / Math.max(1, validIds.length), 3),
    };
    process.stdout.write(
      [
        `fault suite: ${JOBS} jobs (${validIds.length} valid, ${poisonCount} poison) through ${WORKERS} workers in ${round(elapsed, 1)} s`,
        `  kills -9: ${kills}; simulator down ${a["sim-down-ms"]} ms; Postgres cut ${a["pg-cut-ms"]} ms; drained worker exit code ${drainExit}`,
        `  succeeded ${succeeded}, poison failed ${failedPoison}, dead ${dead}, other failed ${rows.filter((r) => r.status === "failed" && !r.error_code?.startsWith("JOB_")).length}, expired ${rows.filter((r) => r.status === "expired").length}`,
        `  lost ${lost}${lostIds.length ? ` (e.g. ${lostIds.slice(0, 3).join(", ")})` : ""}, duplicates ${duplicates}, left in queue ${mainLeft.length}, in DLQ ${dlq.length}`,
        `  provider calls per valid job ${summary.provider_calls_per_job}`,
        JSON.stringify(summary),
        "",
      ].join("\n"),
    );
    return lost === 0 && duplicates === 0 && drainExit === 0 ? 0 : 1;
  } finally {
    await runCleanup(cleanup, (err) => log(`cleanup: ${(err as Error).message}`));
  }
}

/** Receives (and deletes) everything left in a queue, returning what it found. */
async function drainQueue(queue: SqsQueue, url: string): Promise<{ jobId?: string; failureCode?: string }[]> {
  const found: { jobId?: string; failureCode?: string }[] = [];
  for (;;) {
    const batch = await queue.receive(url, { maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 60 });
    if (batch.length === 0) return found;
    for (const m of batch) found.push({ jobId: jobIdOf(m.body), failureCode: m.attributes?.failure_code });
    await queue.deleteBatch(url, batch.map((m, i) => ({ id: String(i), receiptHandle: m.receiptHandle })));
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fault suite failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
