/**
 * What the API's routes are given. Plugins import these types from here (server.ts re-exports them for callers;
 * a plugin importing server.ts would make an import cycle, since server.ts registers the plugins).
 */
import type { FastifyPluginAsync } from "fastify";
import type pg from "pg";
import type { ApiConfig } from "../../shared/config.ts";
import type { Logger } from "../../shared/logger.ts";
import type { SqsQueue } from "../../shared/queue/sqs.ts";
import type { JobStore } from "../../shared/store/jobs.ts";
import type { Producer } from "../producer.ts";
import type { ResultReader } from "../results.ts";
import type { ApiHealth } from "./api-health.ts";
import type { ApiKeyStore } from "./api-keys.ts";
import type { ApiMetrics } from "./api-metrics.ts";
import type { CompletionFeed } from "./completion-feed.ts";
import type { JobWebhooks } from "./job-webhooks.ts";
import type { RateLimiter } from "./rate-limit.ts";
import type { WebhookOutbox } from "./webhook-outbox.ts";

export interface ApiDeps {
  config: ApiConfig;
  log: Logger;
  /** The store's pool: the jobs table and the API's own tables (migration 0006 and later). */
  pool: pg.Pool;
  store: JobStore;
  reader: ResultReader;
  producer: Producer;
  /** Where the API sends jobs: the first (highest priority) queue. */
  queue: SqsQueue;
  queueUrl: string;
  keys: ApiKeyStore;
  /** Absent when rate limiting is off (API_RATE_LIMIT_PER_MINUTE=0). */
  limiter?: RateLimiter;
  /** Job ends, announced once per process (long polls, webhooks). */
  feed: CompletionFeed;
  jobWebhooks: JobWebhooks;
  /** Signed, retried, durable webhook deliveries: `outbox.enqueue([...])`. */
  outbox: WebhookOutbox;
  /** GET /health/live, /health/ready, /health and /metrics, outside /v1 and without a key. Unset: not served. */
  ops?: { health: ApiHealth; metrics: ApiMetrics };
}

/** A route plugin under `/v1`: `app.register(plugin, { deps })`, after authentication and the rate limit. */
export type ApiPlugin = FastifyPluginAsync<{ deps: ApiDeps }>;
