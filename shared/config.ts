/**
 * Every environment variable the fleet reads, in one schema, parsed once at the edge (main.ts of each
 * deployable). Units are in the names. Nothing below the entry points reads process.env.
 * Defaults here are mirrored by terraform/variables.tf (checked by test/terraform.test.ts).
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const url = z.url();
const list = z.string().transform((s) => s.split(",").map((p) => p.trim()).filter(Boolean));
/** The providers a chain can name, in the default fallback order. */
export const PROVIDER_NAMES = ["vllm", "ollama", "gemini"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** A JSON object of strings, or a zod issue (never echoing the value). */
function jsonStringMap(text: string, ctx: z.RefinementCtx): Record<string, string> {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string")) return v as Record<string, string>;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: "custom", message: "must be a JSON object of strings" });
  return z.NEVER;
}
const intList = (min: number, max: number) => list.transform((parts) => parts.map(Number)).pipe(z.array(z.number().int().min(min).max(max)));

/** Defaults shared with terraform/ — keep in step with terraform/variables.tf. */
export const DEFAULTS = {
  queueName: "llm-jobs",
  visibilityTimeoutSeconds: 120,
  waitTimeSeconds: 20,
  maxReceiveCount: 5,
  heartbeatIntervalMs: 30_000,
  drainDeadlineMs: 120_000,
  /** The ASG termination lifecycle hook must outlast the drain; terraform's default. */
  lifecycleHookTimeoutSeconds: 300,
  metricsNamespace: "LlmFleet",
} as const;

export const envSchema = z
  .object({
    // --- queue -----------------------------------------------------------------------------------------
    /** Comma-separated queue URLs, highest priority first. Unset: the embedded emulator creates `QUEUE_NAME`. */
    QUEUE_URLS: list.optional(),
    /**
     * Share of receives that start from each class, comma-separated positive integers, one per QUEUE_URLS entry
     * (highest priority first). Unset: 2^(n-1-i), e.g. 4,2,1 for three classes (57/29/14 % when all have work).
     */
    QUEUE_WEIGHTS: intList(1, 10_000).optional(),
    QUEUE_NAME: z.string().regex(/^[A-Za-z0-9_-]{1,75}$/).default(DEFAULTS.queueName),
    /** Endpoint override for SQS-compatible servers (emulator, LocalStack). Unset: real AWS. */
    SQS_ENDPOINT: url.optional(),
    AWS_REGION: z.string().min(1).default("us-east-1"),
    /** Long-poll wait, 1-20 s (SQS maximum 20). */
    SQS_WAIT_TIME_SECONDS: int(1, 20).default(DEFAULTS.waitTimeSeconds),
    /** Visibility the worker asks for on receive and extends to on every heartbeat. */
    SQS_VISIBILITY_TIMEOUT_SECONDS: int(10, 43_200).default(DEFAULTS.visibilityTimeoutSeconds),
    /** Deliveries before SQS moves a message to the DLQ (RedrivePolicy maxReceiveCount). */
    SQS_MAX_RECEIVE_COUNT: int(1, 1000).default(DEFAULTS.maxReceiveCount),
    // --- store -----------------------------------------------------------------------------------------
    /** Postgres URL. Unset: 127.0.0.1:5432/test when reachable, else embedded Postgres (demo only). */
    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
    /**
     * Postgres password, a value or a Secrets Manager ARN (shared/secrets.ts; `#password` for an RDS-managed JSON
     * secret). Read for each new connection, so a rotation needs no restart. Unset: DATABASE_URL's own password.
     */
    DATABASE_PASSWORD: z.string().min(1).optional(),
    DATABASE_POOL_SIZE: int(1, 200).default(10),
    /** Redis URL for the hot path. Unset or unreachable: results go to Postgres only. */
    REDIS_URL: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").optional(),
    RESULT_TTL_SECONDS: int(60, 30 * 86_400).default(86_400),
    /** Days a finished job's record is kept after it ends (0 = forever); removed in bounded batches by the workers. */
    JOB_RETENTION_DAYS: int(0, 3650).default(30),
    // --- provider ----------------------------------------------------------------------------------------
    VLLM_URL: url.default("http://127.0.0.1:8000"),
    VLLM_MODEL: z.string().min(1).default("meta-llama/Llama-3.1-8B-Instruct"),
    /** A value or a Secrets Manager ARN (shared/secrets.ts). */
    VLLM_API_KEY: z.string().min(1).optional(),
    /** A value or a Secrets Manager ARN (shared/secrets.ts). Unset: no Gemini in the provider chain. */
    GEMINI_API_KEY: z.string().min(1).optional(),
    /** The backend's max-num-seqs: the default concurrency (vLLM's default on an H100 is 1024). */
    VLLM_MAX_NUM_SEQS: int(1, 100_000).default(1024),
    /** Per-request provider timeout. */
    PROVIDER_TIMEOUT_MS: int(100, 3_600_000).default(120_000),
    /** The fallback chain, in order; a provider without its settings (OLLAMA_URL, GEMINI_API_KEY) is left out. */
    PROVIDER_CHAIN: list.pipe(z.array(z.enum(PROVIDER_NAMES)).min(1)).default([...PROVIDER_NAMES]),
    /** Ollama's native API, e.g. http://127.0.0.1:11434. Unset: no Ollama in the chain. */
    OLLAMA_URL: url.optional(),
    /** The Ollama tag jobs run on; a job's own model is mapped through OLLAMA_MODEL_MAP first. */
    OLLAMA_MODEL: z.string().min(1).default("llama3.1:8b"),
    /** JSON object: job model id → Ollama tag, e.g. {"meta-llama/Llama-3.1-8B-Instruct":"llama3.1:8b"}. */
    OLLAMA_MODEL_MAP: z.string().transform(jsonStringMap).optional(),
    /** How long Ollama keeps the model loaded after a request (duration like 30m; -1 keeps it). */
    OLLAMA_KEEP_ALIVE: z.string().min(1).default("30m"),
    /** Calls in flight to Ollama from one worker (a box serves a few at a time). */
    OLLAMA_MAX_IN_FLIGHT: int(1, 10_000).default(4),
    /**
     * How long a job waits for a free Ollama (or Gemini) slot before it tries the next provider in the chain.
     * Unset: it waits within ROUTER_BUDGET_MS, so a busy fallback queues work rather than spilling it further.
     */
    OLLAMA_QUEUE_WAIT_MS: int(0, 3_600_000).optional(),
    /** Google Gemini REST API root. */
    GEMINI_URL: url.default("https://generativelanguage.googleapis.com"),
    GEMINI_MODEL: z.string().min(1).default("gemini-2.5-flash"),
    /** Calls in flight to Gemini from one worker. */
    GEMINI_MAX_IN_FLIGHT: int(1, 10_000).default(16),
    GEMINI_QUEUE_WAIT_MS: int(0, 3_600_000).optional(),
    /** Per-worker request and token rates for Gemini (its quotas are per minute); unset: no limit here. */
    GEMINI_REQUESTS_PER_MINUTE: int(1, 1_000_000).optional(),
    GEMINI_TOKENS_PER_MINUTE: int(1, 1_000_000_000).optional(),
    /** USD Gemini may cost per clock hour, fleet-wide through Redis (per worker without it). Unset: no ceiling. */
    GEMINI_SPEND_CEILING_USD_PER_HOUR: z.coerce.number().positive().optional(),
    /** Consecutive retryable failures that open one provider's circuit, and how long it rests before one probe. */
    PROVIDER_BREAKER_THRESHOLD: int(1, 1000).default(3),
    PROVIDER_BREAKER_COOLDOWN_MS: int(100, 3_600_000).default(60_000),
    /** Longest one job spends in the router waiting and retrying before it goes back to the queue. */
    ROUTER_BUDGET_MS: int(100, 3_600_000).default(30_000),
    /** A provider asking to wait longer than this (Retry-After, Gemini retryDelay) is skipped for the next one. */
    ROUTER_RETRY_AFTER_CAP_MS: int(0, 3_600_000).default(60_000),
    /** Where jobs with risk "high" start (e.g. gemini). Unset: the primary. */
    ROUTER_ACCURATE_PROVIDER: z.enum(PROVIDER_NAMES).optional(),
    // --- secrets (shared/secrets.ts) -------------------------------------------------------------------
    /** Endpoint override for Secrets Manager (the local stand-in, a VPC endpoint). Unset: each ARN's region. */
    SECRETS_ENDPOINT: url.optional(),
    /** How often secrets given as ARNs are fetched again to pick up a rotation. */
    SECRETS_REFRESH_INTERVAL_MS: int(10_000, 86_400_000).default(300_000),
    // --- worker ----------------------------------------------------------------------------------------
    /** Jobs in flight per worker. Unset: the backend's max-num-seqs (vLLM default 1024 on an H100). */
    WORKER_CONCURRENCY: int(1, 10_000).optional(),
    /** Messages per ReceiveMessage call (SQS maximum 10). */
    RECEIVE_BATCH_SIZE: int(1, 10).default(10),
    /** Parallel ReceiveMessage calls while capacity is free. */
    RECEIVE_PARALLELISM: int(1, 64).default(4),
    HEARTBEAT_INTERVAL_MS: int(1000, 3_600_000).default(DEFAULTS.heartbeatIntervalMs),
    /** On SIGTERM, how long running jobs may finish before they are released. */
    DRAIN_DEADLINE_MS: int(0, 3_600_000).default(DEFAULTS.drainDeadlineMs),
    /** Default job TTL when a job carries no deadline (0 = none). */
    JOB_DEFAULT_TTL_SECONDS: int(0, 14 * 86_400).default(0),
    /** Batched deletes wait at most this long to fill a batch of 10. */
    ACK_FLUSH_MS: int(0, 10_000).default(20),
    /** How often each worker sweeps the store: lost last deliveries recorded `dead`, expired records removed. */
    MAINTENANCE_INTERVAL_MS: int(1000, 3_600_000).default(30_000),
    /** A worker whose store writes keep failing this long logs at error and exits non-zero for its supervisor to restart it. */
    WORKER_STALL_EXIT_MS: int(10_000, 86_400_000).default(300_000),
    /** Read vLLM /metrics to keep its waiting queue short. */
    ADAPTIVE_CONCURRENCY: bool.default(true),
    /** How often a worker rewrites its row in the `workers` table (`fleet status`); gone after three missed. */
    PRESENCE_INTERVAL_MS: int(1000, 300_000).default(5_000),
    // --- ops server (worker/ops-server.ts): /health/live, /health/ready, /health, /metrics ---------------------
    /** Port the ops server listens on; 0 takes a free one (demo, tests). Unset: no ops server, nothing listens. */
    OPS_PORT: int(0, 65_535).optional(),
    /** Address the ops server binds (a load balancer's health check reaches it from outside the host). */
    OPS_HOST: z.string().min(1).default("0.0.0.0"),
    // --- batches (producer/api/batches/runner.ts) ---------------------------------------------------------------
    /** Queue the batch runner sends jobs to. Unset: the last (lowest-priority) QUEUE_URLS entry. */
    BATCH_QUEUE_URL: url.optional(),
    /** How often an idle batch runner looks for work, and how often a running batch's progress is checked. */
    BATCH_RUNNER_INTERVAL_MS: int(50, 60_000).default(1_000),
    /** Lines a runner step sends to SQS (also capped at 4 MiB of lines). */
    BATCH_ENQUEUE_CHUNK: int(10, 10_000).default(1_000),
    /** How long a cancelled or expired batch waits for requests already running before its files are assembled. */
    BATCH_FINISH_GRACE_MS: int(0, 3_600_000).default(60_000),
    // --- scale-in (worker/scale-in.ts) ---------------------------------------------------------------------
    /** The worker's Auto Scaling group. Unset (e.g. locally): no scale-in protection, no volunteering. */
    ASG_NAME: z.string().min(1).max(255).optional(),
    /** This instance's EC2 id (the user data reads it from IMDSv2). Required with ASG_NAME. */
    INSTANCE_ID: z.string().regex(/^i-[0-9a-f]{8,17}$/, "must be an EC2 instance id (i-...)").optional(),
    /** How often the worker reads its group to see whether it should volunteer for scale-in. */
    SCALE_IN_CHECK_INTERVAL_MS: int(1000, 3_600_000).default(60_000),
    // --- api (producer/api: the Results API) ----------------------------------------------------------
    /** Interface the API binds; 0.0.0.0 in a container behind a load balancer. */
    API_HOST: z.string().min(1).default("127.0.0.1"),
    API_PORT: int(0, 65_535).default(8080),
    /** Largest JSON request body (POST /v1/jobs), bytes; larger → 413. 1 MiB: 4 max-size jobs or ~1,000 typical ones. */
    API_BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1_048_576),
    /** Requests per minute per API key: the token bucket's refill rate, shared by every replica through Redis. 0 = off. */
    API_RATE_LIMIT_PER_MINUTE: int(0, 1_000_000).default(600),
    /** The bucket's size: requests a key may make at once after being idle. */
    API_RATE_LIMIT_BURST: int(1, 1_000_000).default(100),
    /** Longest `?wait=` a GET may ask for, s. Keep it under the load balancer's idle timeout (ALB default 60 s). */
    API_MAX_WAIT_SECONDS: int(1, 600).default(60),
    /** How long a replica trusts a key lookup, ms: a revoked key still works on it at most this long. 0 = ask Postgres each time. */
    API_KEY_CACHE_TTL_MS: int(0, 3_600_000).default(10_000),
    /** One webhook POST's timeout, ms. */
    API_WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
    /** Attempts before a webhook delivery is given up (recorded `failed`). */
    API_WEBHOOK_MAX_ATTEMPTS: int(1, 100).default(12),
    /** Delay before the first retry, ms; doubles with each attempt up to API_WEBHOOK_RETRY_MAX_MS. */
    API_WEBHOOK_RETRY_BASE_MS: int(10, 3_600_000).default(1_000),
    API_WEBHOOK_RETRY_MAX_MS: int(10, 86_400_000).default(600_000),
    /** How often the API looks for due webhook retries and for finished jobs whose notification it missed, ms. */
    API_WEBHOOK_SWEEP_INTERVAL_MS: int(50, 3_600_000).default(5_000),
    // --- api client (producer/api-cli.ts: `cli batch …`, `cli jobs get …`) ------------------------------------
    /** The Results API the CLI's batch and jobs commands talk to. */
    FLEET_API_URL: url.default("http://127.0.0.1:8080"),
    /** A tenant's API key (make keys, or make serve's api_key). Never logged. */
    FLEET_API_KEY: z.string().min(1).optional(),
    // --- logging (shared/logger.ts) ------------------------------------------------------------------------
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** Lines on stderr: `json`, `pretty` (pino-pretty), or `auto`: pretty when stderr is a terminal, else JSON. */
    LOG_FORMAT: z.enum(["auto", "json", "pretty"]).default("auto"),
    /** Log each job's prompt and answer at debug level (PII-masked). Off: bodies are never logged. */
    LOG_BODIES: bool.default(false),
    // --- metrics (shared/metrics/) ------------------------------------------------------------------------
    /** off: every metric call is a no-op and /metrics is empty (the bench's baseline). */
    METRICS: z.enum(["on", "off"]).default("on"),
    /** Tags on every Datadog series (env, service, version). SERVICE_NAME unset: the deployable's own name. */
    DEPLOY_ENV: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default("dev"),
    SERVICE_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
    SERVICE_VERSION: z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/).optional(),
    /** Datadog API key, a value or a Secrets Manager ARN (shared/secrets.ts). Unset: no Datadog sink. */
    DATADOG_API_KEY: z.string().min(1).optional(),
    /** Datadog site (datadoghq.com, datadoghq.eu, us5.datadoghq.com...): series go to https://api.<site>. */
    DATADOG_SITE: z.string().regex(/^[a-z0-9.-]+$/, "must be a Datadog site such as datadoghq.eu").default("datadoghq.com"),
    /** The API root itself (a proxy, a local stand-in); overrides DATADOG_SITE. */
    DATADOG_API_URL: url.optional(),
    DATADOG_FLUSH_INTERVAL_MS: int(1000, 3_600_000).default(15_000),
    /** Publish to CloudWatch (PutMetricData), BacklogPerInstance included, into METRICS_NAMESPACE. */
    CLOUDWATCH_METRICS: bool.default(false),
    METRICS_NAMESPACE: z.string().regex(/^(?!AWS\/)[A-Za-z0-9._/#:-]{1,255}$/, "must be a custom CloudWatch namespace (not AWS/...)").default(DEFAULTS.metricsNamespace),
    /** Endpoint override for CloudWatch (a local stand-in, a VPC endpoint). Unset: AWS in AWS_REGION. */
    CLOUDWATCH_ENDPOINT: url.optional(),
    /** CloudWatch's standard resolution is a minute: flushing more often buys nothing but requests. */
    CLOUDWATCH_FLUSH_INTERVAL_MS: int(1000, 3_600_000).default(60_000),
  })
  .superRefine((env, ctx) => {
    const queues = env.QUEUE_URLS?.length ?? 1;
    if (env.QUEUE_WEIGHTS !== undefined && env.QUEUE_WEIGHTS.length !== queues) {
      const what = env.QUEUE_URLS === undefined ? "1 queue (QUEUE_NAME)" : `${queues} QUEUE_URLS`;
      ctx.addIssue({ code: "custom", path: ["QUEUE_WEIGHTS"], message: `${env.QUEUE_WEIGHTS.length} weights for ${what}: give one per queue` });
    }
    if (env.DATABASE_PASSWORD !== undefined && env.DATABASE_URL !== undefined && URL.canParse(env.DATABASE_URL) && new URL(env.DATABASE_URL).password !== "") {
      ctx.addIssue({ code: "custom", path: ["DATABASE_PASSWORD"], message: "DATABASE_URL carries a password too: give it in one place" });
    }
    if (env.ASG_NAME !== undefined && env.INSTANCE_ID === undefined) {
      ctx.addIssue({ code: "custom", path: ["INSTANCE_ID"], message: "required with ASG_NAME (scale-in protection acts on this instance)" });
    }
    if (env.HEARTBEAT_INTERVAL_MS >= (env.SQS_VISIBILITY_TIMEOUT_SECONDS * 1000) / 2) {
      ctx.addIssue({
        code: "custom",
        path: ["HEARTBEAT_INTERVAL_MS"],
        message: `must be under half of SQS_VISIBILITY_TIMEOUT_SECONDS (${env.SQS_VISIBILITY_TIMEOUT_SECONDS} s) so a missed beat never lets a message reappear`,
      });
    }
    if (env.API_WEBHOOK_RETRY_BASE_MS > env.API_WEBHOOK_RETRY_MAX_MS) {
      ctx.addIssue({ code: "custom", path: ["API_WEBHOOK_RETRY_BASE_MS"], message: "must not exceed API_WEBHOOK_RETRY_MAX_MS" });
    }
    if (env.DRAIN_DEADLINE_MS >= DEFAULTS.lifecycleHookTimeoutSeconds * 1000) {
      ctx.addIssue({
        code: "custom",
        path: ["DRAIN_DEADLINE_MS"],
        message: `must be under the ASG lifecycle-hook timeout (${DEFAULTS.lifecycleHookTimeoutSeconds} s)`,
      });
    }
  });

export type Env = z.output<typeof envSchema>;

export interface Config {
  queue: {
    urls?: string[];
    /** One per queue; unset: the poller's default. */
    weights?: number[];
    name: string;
    endpoint?: string;
    region: string;
    waitTimeSeconds: number;
    visibilityTimeoutSeconds: number;
    maxReceiveCount: number;
  };
  /** `password` is a value or a Secrets Manager ARN; when set, databaseUrl carries none. */
  store: { databaseUrl?: string; password?: string; poolSize: number; redisUrl?: string; resultTtlSeconds: number; retentionDays: number };
  /** `apiKey` is a value or a Secrets Manager ARN. */
  vllm: { url: string; model: string; apiKey?: string; timeoutMs: number; maxNumSeqs: number };
  providers: {
    chain: ProviderName[];
    ollama?: { url: string; model: string; modelMap?: Record<string, string>; keepAlive: string; maxInFlight: number; queueWaitMs?: number };
    gemini?: { url: string; apiKey: string; model: string; maxInFlight: number; queueWaitMs?: number; requestsPerMinute?: number; tokensPerMinute?: number; spendCeilingUsdPerHour?: number };
    breakerThreshold: number;
    breakerCoolDownMs: number;
    budgetMs: number;
    retryAfterCapMs: number;
    accurate?: ProviderName;
  };
  secrets: { endpoint?: string; refreshIntervalMs: number };
  worker: {
    concurrency?: number;
    receiveBatchSize: number;
    receiveParallelism: number;
    heartbeatIntervalMs: number;
    drainDeadlineMs: number;
    jobDefaultTtlSeconds: number;
    ackFlushMs: number;
    adaptiveConcurrency: boolean;
    maintenanceIntervalMs: number;
    stallExitMs: number;
    presenceIntervalMs: number;
  };
  /** The ops server (health probes, metrics); present only when OPS_PORT is set. */
  ops?: { port: number; host: string };
  api: ApiConfig;
  apiClient: { url: string; key?: string };
  /** The OpenAI-compatible batch runner; queueUrl unset: the last of queue.urls. */
  batch: { queueUrl?: string; runnerIntervalMs: number; enqueueChunk: number; finishGraceMs: number };
  /** Present only when ASG_NAME is set. */
  scaleIn?: { groupName: string; instanceId: string; checkIntervalMs: number };
  logging: {
    level: Env["LOG_LEVEL"];
    format: Env["LOG_FORMAT"];
    /** Prompt and answer bodies at debug level, masked; needs LOG_LEVEL debug or trace to show. */
    bodies: boolean;
  };
  metrics: MetricsConfig;
}

/** METRICS, DATADOG_*, CLOUDWATCH_*, DEPLOY_ENV, SERVICE_*: what shared/metrics/ builds its sinks from. */
export interface MetricsConfig {
  enabled: boolean;
  tags: { env: string; service?: string; version?: string };
  /** Present only with DATADOG_API_KEY; `apiKey` is a value or a Secrets Manager ARN. */
  datadog?: { apiKey: string; apiUrl: string; flushIntervalMs: number };
  /** Present only with CLOUDWATCH_METRICS=true. */
  cloudwatch?: { namespace: string; endpoint?: string; flushIntervalMs: number };
}

/** The Results API (producer/api); env names in envSchema's "api" block. */
export interface ApiConfig {
  host: string;
  port: number;
  bodyLimitBytes: number;
  /** Absent when API_RATE_LIMIT_PER_MINUTE is 0. */
  rateLimit?: { perMinute: number; burst: number };
  maxWaitSeconds: number;
  keyCacheTtlMs: number;
  webhooks: { timeoutMs: number; maxAttempts: number; retryBaseMs: number; retryMaxMs: number; sweepIntervalMs: number };
}

/** Parse the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const relevant = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(relevant);
  if (!parsed.success) {
    // Name the variable, never echo its value: it may be a secret.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".") || "(env)"}: ${i.message}`));
  }
  const e = parsed.data;
  return {
    queue: {
      urls: e.QUEUE_URLS,
      weights: e.QUEUE_WEIGHTS,
      name: e.QUEUE_NAME,
      endpoint: e.SQS_ENDPOINT,
      region: e.AWS_REGION,
      waitTimeSeconds: e.SQS_WAIT_TIME_SECONDS,
      visibilityTimeoutSeconds: e.SQS_VISIBILITY_TIMEOUT_SECONDS,
      maxReceiveCount: e.SQS_MAX_RECEIVE_COUNT,
    },
    store: { databaseUrl: e.DATABASE_URL, password: e.DATABASE_PASSWORD, poolSize: e.DATABASE_POOL_SIZE, redisUrl: e.REDIS_URL, resultTtlSeconds: e.RESULT_TTL_SECONDS, retentionDays: e.JOB_RETENTION_DAYS },
    vllm: { url: e.VLLM_URL, model: e.VLLM_MODEL, apiKey: e.VLLM_API_KEY, timeoutMs: e.PROVIDER_TIMEOUT_MS, maxNumSeqs: e.VLLM_MAX_NUM_SEQS },
    providers: {
      chain: [...new Set(e.PROVIDER_CHAIN)],
      ollama: e.OLLAMA_URL === undefined ? undefined : { url: e.OLLAMA_URL, model: e.OLLAMA_MODEL, modelMap: e.OLLAMA_MODEL_MAP, keepAlive: e.OLLAMA_KEEP_ALIVE, maxInFlight: e.OLLAMA_MAX_IN_FLIGHT, queueWaitMs: e.OLLAMA_QUEUE_WAIT_MS },
      gemini:
        e.GEMINI_API_KEY === undefined
          ? undefined
          : {
              url: e.GEMINI_URL,
              apiKey: e.GEMINI_API_KEY,
              model: e.GEMINI_MODEL,
              maxInFlight: e.GEMINI_MAX_IN_FLIGHT,
              queueWaitMs: e.GEMINI_QUEUE_WAIT_MS,
              requestsPerMinute: e.GEMINI_REQUESTS_PER_MINUTE,
              tokensPerMinute: e.GEMINI_TOKENS_PER_MINUTE,
              spendCeilingUsdPerHour: e.GEMINI_SPEND_CEILING_USD_PER_HOUR,
            },
      breakerThreshold: e.PROVIDER_BREAKER_THRESHOLD,
      breakerCoolDownMs: e.PROVIDER_BREAKER_COOLDOWN_MS,
      budgetMs: e.ROUTER_BUDGET_MS,
      retryAfterCapMs: e.ROUTER_RETRY_AFTER_CAP_MS,
      accurate: e.ROUTER_ACCURATE_PROVIDER,
    },
    secrets: { endpoint: e.SECRETS_ENDPOINT, refreshIntervalMs: e.SECRETS_REFRESH_INTERVAL_MS },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      receiveBatchSize: e.RECEIVE_BATCH_SIZE,
      receiveParallelism: e.RECEIVE_PARALLELISM,
      heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
      drainDeadlineMs: e.DRAIN_DEADLINE_MS,
      jobDefaultTtlSeconds: e.JOB_DEFAULT_TTL_SECONDS,
      ackFlushMs: e.ACK_FLUSH_MS,
      adaptiveConcurrency: e.ADAPTIVE_CONCURRENCY,
      maintenanceIntervalMs: e.MAINTENANCE_INTERVAL_MS,
      stallExitMs: e.WORKER_STALL_EXIT_MS,
      presenceIntervalMs: e.PRESENCE_INTERVAL_MS,
    },
    ops: e.OPS_PORT === undefined ? undefined : { port: e.OPS_PORT, host: e.OPS_HOST },
    batch: { queueUrl: e.BATCH_QUEUE_URL, runnerIntervalMs: e.BATCH_RUNNER_INTERVAL_MS, enqueueChunk: e.BATCH_ENQUEUE_CHUNK, finishGraceMs: e.BATCH_FINISH_GRACE_MS },
    scaleIn:
      e.ASG_NAME === undefined || e.INSTANCE_ID === undefined
        ? undefined
        : { groupName: e.ASG_NAME, instanceId: e.INSTANCE_ID, checkIntervalMs: e.SCALE_IN_CHECK_INTERVAL_MS },
    apiClient: { url: e.FLEET_API_URL, key: e.FLEET_API_KEY },
    api: {
      host: e.API_HOST,
      port: e.API_PORT,
      bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
      rateLimit: e.API_RATE_LIMIT_PER_MINUTE === 0 ? undefined : { perMinute: e.API_RATE_LIMIT_PER_MINUTE, burst: e.API_RATE_LIMIT_BURST },
      maxWaitSeconds: e.API_MAX_WAIT_SECONDS,
      keyCacheTtlMs: e.API_KEY_CACHE_TTL_MS,
      webhooks: {
        timeoutMs: e.API_WEBHOOK_TIMEOUT_MS,
        maxAttempts: e.API_WEBHOOK_MAX_ATTEMPTS,
        retryBaseMs: e.API_WEBHOOK_RETRY_BASE_MS,
        retryMaxMs: e.API_WEBHOOK_RETRY_MAX_MS,
        sweepIntervalMs: e.API_WEBHOOK_SWEEP_INTERVAL_MS,
      },
    },
    logging: { level: e.LOG_LEVEL, format: e.LOG_FORMAT, bodies: e.LOG_BODIES },
    metrics: metricsConfig(e),
  };
}

function metricsConfig(e: Env): MetricsConfig {
  return {
    enabled: e.METRICS === "on",
    tags: { env: e.DEPLOY_ENV, service: e.SERVICE_NAME, version: e.SERVICE_VERSION },
    datadog:
      e.DATADOG_API_KEY === undefined
        ? undefined
        : { apiKey: e.DATADOG_API_KEY, apiUrl: e.DATADOG_API_URL ?? `https://api.${e.DATADOG_SITE}`, flushIntervalMs: e.DATADOG_FLUSH_INTERVAL_MS },
    cloudwatch: e.CLOUDWATCH_METRICS ? { namespace: e.METRICS_NAMESPACE, endpoint: e.CLOUDWATCH_ENDPOINT, flushIntervalMs: e.CLOUDWATCH_FLUSH_INTERVAL_MS } : undefined,
  };
}
