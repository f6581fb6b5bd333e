/**
 * Wires the API's parts over connections the caller opened (main.ts, tests): the completion feed and its sources
 * (Postgres LISTEN, Redis `done` when there is a cache), the webhook outbox's loop, the rate limiter. `close()`
 * stops what this started, in reverse; the caller closes the connections it gave.
 */
import type pg from "pg";
import type { Redis } from "ioredis";
import type { ApiConfig } from "../../shared/config.ts";
import type { Logger } from "../../shared/logger.ts";
import type { SqsQueue } from "../../shared/queue/sqs.ts";
import { JobStore } from "../../shared/store/jobs.ts";
import type { ResultsCache } from "../../shared/store/results-cache.ts";
import { runCleanup, type CleanupStep } from "../../shared/shutdown.ts";
import { Producer } from "../producer.ts";
import { ResultReader } from "../results.ts";
import type { ApiDeps } from "./api-deps.ts";
import { ping } from "../../shared/store/pool.ts";
import { ApiHealth } from "./api-health.ts";
import { ApiKeyStore } from "./api-keys.ts";
import { ApiMetrics } from "./api-metrics.ts";
import { CompletionFeed } from "./completion-feed.ts";
import { listenRedisDone, PostgresDoneListener } from "./done-listener.ts";
import { JobWebhooks } from "./job-webhooks.ts";
import { RateLimiter } from "./rate-limit.ts";
import { WebhookOutbox } from "./webhook-outbox.ts";
import { BatchRunner } from "./batches/runner.ts";
import { BatchStore } from "./batches/batch-store.ts";
import { FileStore } from "./files/file-store.ts";

export interface ApiRuntimeOptions {
  config: ApiConfig;
  log: Logger;
  /** Migrated. */
  pool: pg.Pool;
  queue: SqsQueue;
  queueUrl: string;
  /** Redis results cache: reads and wake-ups. Unset: Postgres alone. */
  cache?: ResultsCache;
  /** A Redis connection for the shared rate-limit buckets. Unset: per-process buckets. */
  redis?: Redis;
  /**
   * The OpenAI Batch runner (moves batches along; safe with several replicas). `queueUrl`: where batch jobs go,
   * normally the lowest-priority class. Unset: no runner in this process (batches are created but do not move).
   */
  batch?: { queueUrl: string; runnerIntervalMs: number; enqueueChunk: number; finishGraceMs: number };
  /** Where long polls are woken from. Default both (Redis only when `cache` is given); tests isolate one. */
  wakeUps?: { postgres: boolean; redis: boolean };
}

export interface ApiRuntime {
  deps: ApiDeps;
  close(): Promise<void>;
}

export async function openApiRuntime(o: ApiRuntimeOptions): Promise<ApiRuntime> {
  const steps: CleanupStep[] = [];
  const close = () => runCleanup(steps, (err) => o.log.warn({ err }, "API cleanup step failed"));
  try {
    const store = new JobStore(o.pool);
    const feed = new CompletionFeed();
    steps.push(() => feed.close());
    // Both by default: Redis announces succeeded jobs only (the worker caches only those), NOTIFY every terminal one.
    if (o.wakeUps?.postgres !== false) {
      const listener = new PostgresDoneListener({ connection: o.pool.options, channel: await store.doneChannel(), feed, log: o.log });
      steps.push(() => listener.stop());
      await listener.start();
    }
    if (o.cache !== undefined && o.wakeUps?.redis !== false) {
      const unsubscribe = await listenRedisDone(o.cache, feed);
      steps.push(unsubscribe);
    }
    const w = o.config.webhooks;
    const outbox = new WebhookOutbox({ pool: o.pool, timeoutMs: w.timeoutMs, maxAttempts: w.maxAttempts, retryBaseMs: w.retryBaseMs, retryMaxMs: w.retryMaxMs, sweepIntervalMs: w.sweepIntervalMs, log: o.log });
    const jobWebhooks = new JobWebhooks({ pool: o.pool, store, outbox, log: o.log });
    steps.push(() => jobWebhooks.settled());
    const stopNoticing = feed.onDone((ids) => jobWebhooks.notice(ids));
    steps.push(stopNoticing);
    outbox.start();
    steps.push(() => outbox.stop());
    if (o.batch !== undefined) {
      const runner = new BatchRunner({
        pool: o.pool,
        batches: new BatchStore(o.pool),
        files: new FileStore(o.pool),
        jobs: store,
        producer: new Producer({ queue: o.queue, queueUrl: o.batch.queueUrl }),
        log: o.log,
        intervalMs: o.batch.runnerIntervalMs,
        enqueueChunk: o.batch.enqueueChunk,
        finishGraceMs: o.batch.finishGraceMs,
        // The webhook commits with the batch's end state, or not at all.
        onEnded: async (client, ended) => {
          if (ended.webhookUrl === null) return;
          await outbox.enqueue([{ tenant: ended.tenant, url: ended.webhookUrl, event: "batch.completed", subjectId: String(ended.batch.id), data: ended.batch }], client);
        },
      });
      runner.start();
      steps.push(() => runner.stop());
    }
    const limiter = o.config.rateLimit && new RateLimiter({ ...o.config.rateLimit, redis: o.redis, log: o.log });
    const deps: ApiDeps = {
      config: o.config,
      log: o.log,
      pool: o.pool,
      store,
      reader: new ResultReader(store, o.cache),
      producer: new Producer({ queue: o.queue, queueUrl: o.queueUrl }),
      queue: o.queue,
      queueUrl: o.queueUrl,
      keys: new ApiKeyStore(o.pool),
      limiter,
      feed,
      jobWebhooks,
      outbox,
      ops: {
        health: new ApiHealth({
          pingStore: () => ping(o.pool),
          queueUrl: o.queueUrl,
          checkQueue: (url, signal) => o.queue.check(url, signal),
          pingRedis: o.redis && (() => o.redis!.ping()),
        }),
        metrics: new ApiMetrics(),
      },
    };
    return { deps, close };
  } catch (err) {
    await close();
    throw err;
  }
}
