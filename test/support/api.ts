/**
 * A Results API over real services for one test: its own schema (migrated), queue and DLQ on the emulator,
 * optionally Redis (a key prefix of its own), listening on a free loopback port. `restart()` closes the API and
 * opens a new one on the same store, queue and Redis (what an API restart keeps: the database).
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { loadConfig, type ApiConfig } from "../../shared/config.ts";
import { ResultsCache } from "../../shared/store/results-cache.ts";
import { ApiKeyStore } from "../../producer/api/api-keys.ts";
import { openApiRuntime, type ApiRuntime, type ApiRuntimeOptions } from "../../producer/api/runtime.ts";
import { buildApi } from "../../producer/api/server.ts";
import { queueFixture, REDIS_URL, silentLog, storeFixture, type QueueFixture, type StoreFixture } from "./env.ts";

export interface ApiFixtureOptions {
  /** Overrides of the parsed defaults (nested objects replace whole). */
  config?: Partial<ApiConfig>;
  /** Redis for results, wake-ups and rate limits. Default true. */
  redis?: boolean;
  wakeUps?: ApiRuntimeOptions["wakeUps"];
  /** Run the OpenAI Batch runner in this API (batch jobs go to the fixture's queue). */
  batch?: boolean;
  /** Share this fixture's store, queue and Redis prefix (a second replica). */
  sharing?: ApiFixture;
}

export interface ApiFixture {
  /** http://127.0.0.1:port, no trailing slash. */
  url: string;
  runtime: ApiRuntime;
  s: StoreFixture;
  q: QueueFixture;
  /** The results cache the API reads (give it to the test worker so both use the same keys); undefined without Redis. */
  cache?: ResultsCache;
  keyPrefix: string;
  /** A new key (and, for a new tenant, its signing secret). */
  key(tenant: string): Promise<{ key: string; id: string; webhookSecret?: string }>;
  request(path: string, o?: { key?: string; method?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; json: any }>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Test-sized defaults: fast webhook retries and sweeps, no key cache (a revocation shows at once). */
export function testApiConfig(overrides: Partial<ApiConfig> = {}): ApiConfig {
  const base = loadConfig({}).api;
  return { ...base, host: "127.0.0.1", port: 0, keyCacheTtlMs: 0, webhooks: { ...base.webhooks, retryBaseMs: 50, retryMaxMs: 200, sweepIntervalMs: 100, timeoutMs: 2_000 }, ...overrides };
}

export async function apiFixture(o: ApiFixtureOptions = {}): Promise<ApiFixture> {
  const owned = o.sharing === undefined;
  const s = o.sharing?.s ?? (await storeFixture());
  const q = o.sharing?.q ?? (await queueFixture());
  const keyPrefix = o.sharing?.keyPrefix ?? `test:api:${randomBytes(5).toString("hex")}:`;
  const useRedis = o.redis ?? true;
  const cache = useRedis ? new ResultsCache({ url: REDIS_URL, ttlSeconds: 600, keyPrefix }) : undefined;
  if (cache && !(await cache.ready())) throw new Error("Redis is not up for this test");
  const redis = useRedis ? new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 }) : undefined;
  redis?.on("error", () => undefined);
  if (redis) await new Promise<void>((resolve) => redis.once("ready", () => resolve()));
  const config = testApiConfig(o.config);
  const keys = new ApiKeyStore(s.pool);
  let runtime: ApiRuntime;
  let app: ReturnType<typeof buildApi>;
  let url = "";
  const open = async () => {
    const batch = o.batch ? { queueUrl: q.queueUrl, runnerIntervalMs: 100, enqueueChunk: 100, finishGraceMs: 1_000 } : undefined;
    runtime = await openApiRuntime({ config, log: silentLog, pool: s.pool, queue: q.queue, queueUrl: q.queueUrl, cache, redis, wakeUps: o.wakeUps, batch });
    app = buildApi(runtime.deps);
    url = await app.listen({ host: "127.0.0.1", port: 0 });
  };
  const shut = async () => {
    await app.close();
    await runtime.close();
  };
  await open();
  const fixture: ApiFixture = {
    get url() {
      return url;
    },
    get runtime() {
      return runtime;
    },
    s,
    q,
    cache,
    keyPrefix,
    key: async (tenant) => {
      const k = await keys.create(tenant);
      return { key: k.key, id: k.id, webhookSecret: k.webhookSecret };
    },
    request: async (path, r = {}) => {
      const headers: Record<string, string> = { ...(r.key ? { authorization: `Bearer ${r.key}` } : {}), ...(r.body !== undefined ? { "content-type": "application/json" } : {}), ...r.headers };
      const res = await fetch(`${url}${path}`, { method: r.method ?? (r.body === undefined ? "GET" : "POST"), headers, body: r.body === undefined ? undefined : typeof r.body === "string" ? r.body : JSON.stringify(r.body) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text === "" ? undefined : JSON.parse(text) };
    },
    restart: async () => {
      await shut();
      await open();
    },
    close: async () => {
      await shut();
      await cache?.close();
      redis?.disconnect();
      if (owned) await s.close();
    },
  };
  return fixture;
}
