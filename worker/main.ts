/**
 * Worker entry point: parse config once, wire real dependencies, run until SIGTERM/SIGINT, drain, exit 0.
 * A second signal exits at once (1): the messages still held come back after their visibility timeout.
 */
import type pg from "pg";
import { loadConfig, type Config } from "../shared/config.ts";
import { ConfigError, coerceError, errorCode } from "../shared/errors.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import { stripUserInfo, withoutUserInfo } from "../shared/userinfo.ts";
import { SecretResolver, type SecretValue } from "../shared/secrets.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { buildFleetMetrics } from "../shared/metrics/build-metrics.ts";
import type { FleetMetrics } from "../shared/metrics/fleet-metrics.ts";
import { migrate } from "../shared/store/migrate.ts";
import { createPool, ping } from "../shared/store/pool.ts";
import { PresenceStore } from "../shared/store/presence.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { exitAfterCleanup as shutdown, type CleanupStep } from "../shared/shutdown.ts";
import { buildProviderChain } from "./provider-chain.ts";
import { Worker } from "./worker.ts";
import { AwsAutoScaling } from "./auto-scaling.ts";
import { ScaleInCoordinator } from "./scale-in.ts";
import { WorkerHealth } from "./health.ts";
import { startOpsServer, type OpsServer } from "./ops-server.ts";
import { runPresence } from "./presence.ts";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
    if (config.store.databaseUrl === undefined) throw new ConfigError(["DATABASE_URL: required by the worker"]);
  } catch (err) {
    process.stderr.write(`${stripUserInfo((err as Error).message)}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logging.level, "worker", { format: config.logging.format });
  const closers: CleanupStep[] = [];
  try {
    // No progress possible (store unreachable past WORKER_STALL_EXIT_MS, or a queue refused for good): drain what
    // can be drained, exit 3 so the supervisor restarts us.
    const onStalled = () => void worker.stop().then(() => shutdown(closers, log, 3));
    const built = await build(config, log, closers, onStalled);
    const worker: Worker = built.worker;
    const scaleIn = buildScaleIn(config, worker, log, closers);
    let signals = 0;
    const onSignal = (signal: string) => {
      signals += 1;
      if (signals > 1) {
        log.warn({ signal }, "second signal: exiting without drain");
        process.exit(1);
      }
      log.info({ signal }, "stopping");
      void scaleIn?.stop();
      void worker.stop().then(() => shutdown(closers, log, 0));
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // Protected from scale-in before the first job is taken (a failure is retried by the coordinator's checks).
    await scaleIn?.start();
    // Listening before the worker starts: live at once, ready (200) once it runs. Closed after the drain (closers).
    const ops = await startOps(config, built, log, closers);
    worker.start();
    startPresence(config, built, ops, log, closers);
    // Supervisors that spawned us with an IPC channel (the demo, the fault suite) learn we are up, and where to probe.
    process.send?.({ type: "ready", workerId: worker.workerId, ...(ops === undefined ? {} : { opsUrl: ops.url }) });
  } catch (err) {
    if (err instanceof QueueUnusable) {
      process.stderr.write(`${stripUserInfo(err.message)}\n`);
      await shutdown(closers, log, 2);
    }
    log.fatal({ err: coerceError(err) }, "worker failed to start");
    await shutdown(closers, log, 1);
  }
}

/** A queue the worker cannot use at start; the message is the one line printed before exiting 2. */
class QueueUnusable extends Error {}

/**
 * Every queue answers (GetQueueUrl for QUEUE_NAME, GetQueueAttributes for each) before the worker takes work:
 * a wrong URL or name, or no permission, is a deployment error, not something a retry after "worker started" fixes.
 */
async function checkQueues(config: Config, queue: SqsQueue): Promise<string[]> {
  const endpoint = config.queue.endpoint === undefined ? `AWS SQS in ${config.queue.region}` : withoutUserInfo(config.queue.endpoint);
  const check = async (target: string, resolve: boolean): Promise<string> => {
    try {
      const url = resolve ? await queue.queueUrl(target) : target;
      await queue.check(url);
      return url;
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new QueueUnusable(`worker cannot start: queue ${target} at endpoint ${endpoint}: ${errorCode(err)} (${detail})`);
    }
  };
  return config.queue.urls === undefined ? [await check(config.queue.name, true)] : Promise.all(config.queue.urls.map((url) => check(url, false)));
}

/**
 * DATABASE_PASSWORD, VLLM_API_KEY and GEMINI_API_KEY, each a value or a Secrets Manager ARN, fetched together before
 * any client is built. The pool asks for the password on each new connection and the provider clients read their key
 * per request (refreshing it after an auth failure), so a rotation reaches them without a restart.
 */
async function resolveSecrets(
  config: Config,
  log: Logger,
  closers: CleanupStep[],
): Promise<{ databasePassword?: SecretValue; vllmApiKey?: SecretValue; geminiApiKey?: SecretValue; datadogApiKey?: SecretValue }> {
  const resolver = new SecretResolver({ endpoint: config.secrets.endpoint, refreshIntervalMs: config.secrets.refreshIntervalMs, log });
  closers.push(() => resolver.close());
  const secrets = await resolver.resolveAll({
    DATABASE_PASSWORD: config.store.password,
    VLLM_API_KEY: config.vllm.apiKey,
    GEMINI_API_KEY: config.providers.gemini?.apiKey,
    DATADOG_API_KEY: config.metrics.enabled ? config.metrics.datadog?.apiKey : undefined,
  });
  return { databasePassword: secrets.DATABASE_PASSWORD, vllmApiKey: secrets.VLLM_API_KEY, geminiApiKey: secrets.GEMINI_API_KEY, datadogApiKey: secrets.DATADOG_API_KEY };
}

/**
 * The worker's metrics (Prometheus always; Datadog, CloudWatch as configured). Registered as a closer after the
 * queue and the group client, so its last flush (CloudWatch reads queue depth) runs before they close.
 */
async function buildMetrics(config: Config, log: Logger, closers: CleanupStep[], queue: SqsQueue, queueUrls: string[], datadogKey: SecretValue | undefined): Promise<FleetMetrics> {
  const s = config.scaleIn;
  // In-service workers for BacklogPerInstance: the group's own count (DescribeAutoScalingGroups, already allowed).
  const group = config.metrics.cloudwatch === undefined || s === undefined ? undefined : new AwsAutoScaling({ region: config.queue.region, groupName: s.groupName, instanceId: s.instanceId });
  if (group !== undefined) closers.push(() => group.close());
  const metrics = await buildFleetMetrics(config.metrics, {
    service: "llm-fleet-worker",
    region: config.queue.region,
    log,
    datadogApiKey: datadogKey && (() => datadogKey.current()),
    groupName: config.scaleIn?.groupName,
    queueDepth: async () => {
      const depths = await Promise.all(queueUrls.map((url) => queue.depth(url)));
      return { visible: depths.reduce((n, d) => n + d.visible, 0), inFlight: depths.reduce((n, d) => n + d.inFlight, 0) };
    },
    inService: group && (async () => (await group.describeGroup()).inService.length),
  });
  closers.push(() => metrics.close());
  return metrics;
}

/** The worker and the clients it was built on (health checks and presence use them too). */
interface Built {
  worker: Worker;
  pool: pg.Pool;
  queue: SqsQueue;
  queueUrls: string[];
}

async function build(config: Config, log: Logger, closers: CleanupStep[], onStalled: () => void): Promise<Built> {
  const secrets = await resolveSecrets(config, log, closers);
  const queue = new SqsQueue({ region: config.queue.region, endpoint: config.queue.endpoint });
  closers.push(() => queue.close());
  const queueUrls = await checkQueues(config, queue);
  const metrics = await buildMetrics(config, log, closers, queue, queueUrls, secrets.datadogApiKey);
  const password = secrets.databasePassword;
  const pool = await createPool({
    url: config.store.databaseUrl!,
    poolSize: config.store.poolSize,
    ...(password === undefined ? {} : { password: () => password.current() }),
    onError: (err) => log.warn({ err }, "idle Postgres client error"),
  });
  closers.push(() => pool.end());
  await migrate(pool);
  const cache = config.store.redisUrl === undefined ? undefined : new ResultsCache({ url: config.store.redisUrl, ttlSeconds: config.store.resultTtlSeconds, logger: log });
  if (cache) {
    closers.push(() => cache.close());
    if (!(await cache.ready())) log.warn("Redis not reachable at start; results go to Postgres only until it is");
  }
  const concurrency = config.worker.concurrency ?? config.vllm.maxNumSeqs;
  const chain = buildProviderChain(config, concurrency, { vllm: secrets.vllmApiKey, gemini: secrets.geminiApiKey });
  closers.push(() => chain.close());
  log.info({ chain: chain.routes.map((r) => r.name ?? r.provider.name) }, "provider chain");
  const worker = new Worker({
    queue,
    queueUrls,
    // A refused password: fetch the secret again (rate-limited); writes are retried meanwhile, the job is not failed.
    store: new JobStore(pool, password && (() => void password.refresh())),
    cache,
    routes: chain.routes,
    router: chain.router,
    readGauges: config.worker.adaptiveConcurrency ? (signal) => chain.vllm.metrics(signal) : undefined,
    concurrency,
    receiveBatchSize: config.worker.receiveBatchSize,
    receiveParallelism: config.worker.receiveParallelism,
    waitTimeSeconds: config.queue.waitTimeSeconds,
    visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
    maxReceiveCount: config.queue.maxReceiveCount,
    heartbeatIntervalMs: config.worker.heartbeatIntervalMs,
    drainDeadlineMs: config.worker.drainDeadlineMs,
    jobDefaultTtlSeconds: config.worker.jobDefaultTtlSeconds,
    ackFlushMs: config.worker.ackFlushMs,
    queueWeights: config.queue.weights,
    maintenanceIntervalMs: config.worker.maintenanceIntervalMs,
    retentionMs: config.store.retentionDays * 86_400_000,
    stallExitMs: config.worker.stallExitMs,
    onStalled,
    log,
    metrics,
    logBodies: config.logging.bodies,
  });
  return { worker, pool, queue, queueUrls };
}

/**
 * The ops server when OPS_PORT is set: health probes over the worker's own pool and queue client, and the worker's
 * metrics registry at /metrics.
 */
async function startOps(config: Config, b: Built, log: Logger, closers: CleanupStep[]): Promise<OpsServer | undefined> {
  if (config.ops === undefined) return undefined;
  const health = new WorkerHealth({
    snapshot: () => b.worker.snapshot(),
    pingStore: () => ping(b.pool),
    queueUrls: b.queueUrls,
    checkQueue: (url, signal) => b.queue.check(url, signal),
  });
  const server = await startOpsServer({ host: config.ops.host, port: config.ops.port, health, metrics: b.worker.metrics.exposition(), log });
  closers.push(() => server.close());
  return server;
}

/** The worker's row in `workers` (fleet status); removed after the drain, before the pool closes. */
function startPresence(config: Config, b: Built, ops: OpsServer | undefined, log: Logger, closers: CleanupStep[]): void {
  const stop = new AbortController();
  const loop = runPresence(
    { store: new PresenceStore(b.pool), snapshot: () => b.worker.snapshot(), intervalMs: config.worker.presenceIntervalMs, opsPort: ops?.port, log },
    stop.signal,
  );
  closers.push(() => {
    stop.abort();
    return loop;
  });
}

/** Scale-in cooperation when the worker runs in an Auto Scaling group (ASG_NAME and INSTANCE_ID set). */
function buildScaleIn(config: Config, worker: Worker, log: Logger, closers: CleanupStep[]): ScaleInCoordinator | undefined {
  if (config.scaleIn === undefined) return undefined;
  const port = new AwsAutoScaling({ region: config.queue.region, groupName: config.scaleIn.groupName, instanceId: config.scaleIn.instanceId });
  const coordinator = new ScaleInCoordinator({ port, worker, instanceId: config.scaleIn.instanceId, checkIntervalMs: config.scaleIn.checkIntervalMs, log });
  closers.push(() => port.close(), () => coordinator.stop());
  return coordinator;
}


void main();
