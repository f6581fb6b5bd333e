/**
 * Results API entry point: parse config once, open Postgres (migrated), the queue, Redis when configured, listen.
 * SIGTERM/SIGINT: stop accepting, answer waiting long polls with what they have, finish requests in flight, stop
 * the webhook loop, close connections, exit 0. A second signal exits at once (1).
 */
import { Redis } from "ioredis";
import { loadConfig, type Config } from "../../shared/config.ts";
import { ConfigError, coerceError } from "../../shared/errors.ts";
import { createLogger, type Logger } from "../../shared/logger.ts";
import { SqsQueue } from "../../shared/queue/sqs.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";
import { ResultsCache } from "../../shared/store/results-cache.ts";
import { exitAfterCleanup as shutdown, type CleanupStep } from "../../shared/shutdown.ts";
import { SecretResolver } from "../../shared/secrets.ts";
import { openApiRuntime } from "./runtime.ts";
import { buildApi } from "./server.ts";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
    if (config.store.databaseUrl === undefined) throw new ConfigError(["DATABASE_URL: required by the API"]);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logging.level, "api", { format: config.logging.format });
  const closers: CleanupStep[] = [];
  try {
    const app = await start(config, log, closers);
    let signals = 0;
    const onSignal = (signal: string) => {
      signals += 1;
      if (signals > 1) {
        log.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      log.info({ signal }, "stopping");
      void shutdown(closers, log, 0);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    const address = await app.listen({ host: config.api.host, port: config.api.port });
    log.info({ address }, "API listening");
    process.send?.({ type: "ready", address });
  } catch (err) {
    log.fatal({ err: coerceError(err) }, "API failed to start");
    await shutdown(closers, log, 1);
  }
}

async function start(config: Config, log: Logger, closers: CleanupStep[]) {
  const resolver = new SecretResolver({ endpoint: config.secrets.endpoint, refreshIntervalMs: config.secrets.refreshIntervalMs, log });
  closers.push(() => resolver.close());
  const password = (await resolver.resolveAll({ DATABASE_PASSWORD: config.store.password })).DATABASE_PASSWORD;
  const pool = await createPool({
    url: config.store.databaseUrl!,
    poolSize: config.store.poolSize,
    ...(password === undefined ? {} : { password: () => password.current() }),
    onError: (err) => log.warn({ err }, "idle Postgres client error"),
  });
  closers.push(() => pool.end());
  await migrate(pool);
  const queue = new SqsQueue({ region: config.queue.region, endpoint: config.queue.endpoint });
  closers.push(() => queue.close());
  const queueUrl = config.queue.urls?.[0] ?? (await queue.queueUrl(config.queue.name));
  let cache: ResultsCache | undefined;
  let redis: Redis | undefined;
  if (config.store.redisUrl !== undefined) {
    cache = new ResultsCache({ url: config.store.redisUrl, ttlSeconds: config.store.resultTtlSeconds, logger: log });
    closers.push(() => cache?.close());
    if (!(await cache.ready())) log.warn("Redis not reachable at start; reads go to Postgres and rate limits are per replica until it is");
    // Rate-limit calls fail fast while Redis is away (the limiter falls back to this replica's own buckets).
    redis = new Redis(config.store.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500, connectTimeout: 1_000 });
    redis.on("error", () => undefined); // reported by the limiter and the cache, once per outage
    closers.push(() => redis?.quit().catch(() => redis?.disconnect()));
  }
  // Batch work goes to the lowest-priority class unless BATCH_QUEUE_URL says otherwise: it yields to interactive jobs.
  const batchQueueUrl = config.batch.queueUrl ?? config.queue.urls?.at(-1) ?? queueUrl;
  const runtime = await openApiRuntime({ config: config.api, log, pool, queue, queueUrl, cache, redis, batch: { ...config.batch, queueUrl: batchQueueUrl } });
  closers.push(() => runtime.close());
  const app = buildApi(runtime.deps);
  closers.push(() => app.close());
  return app;
}


void main();
