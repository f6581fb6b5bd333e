/**
 * Per-key rate limit: a token bucket (`burst` tokens, refilled at `perMinute`), one request one token. With Redis
 * every replica draws from the same bucket (a Lua script, atomic, on Redis's clock so replicas' clocks do not
 * matter); without it, or while Redis is unreachable, each replica keeps its own bucket: the limit then holds per
 * replica instead of failing requests. @fastify/rate-limit's Redis store counts in fixed windows (INCR + PEXPIRE),
 * which lets a key send twice its limit across a window edge and refills all at once; hence this bucket.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "../../shared/logger.ts";
import { ApiError } from "./errors.ts";

export interface Take {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** When refused: how long until one token is back, ms. */
  retryAfterMs: number;
}

export interface RateLimitOptions {
  perMinute: number;
  burst: number;
  /** Shared buckets; unset: per-process buckets only. */
  redis?: Redis;
  /** Prepended to bucket keys in Redis. Default "fleet:ratelimit:". */
  keyPrefix?: string;
  log?: Pick<Logger, "warn" | "info">;
}

// KEYS[1] bucket; ARGV capacity, tokens per ms. Returns {allowed 0/1, whole tokens left, ms until one token}.
const TAKE_LUA = `
local now_parts = redis.call('TIME')
local now = now_parts[1] * 1000 + math.floor(now_parts[2] / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return {allowed, math.floor(tokens), wait}
`;

/** Per-process buckets at most; full (idle) ones are dropped first when it is reached. */
const MAX_LOCAL_BUCKETS = 10_000;

export class RateLimiter {
  private readonly ratePerMs: number;
  private readonly local = new Map<string, { tokens: number; at: number }>();
  private redisDown = false;

  constructor(private readonly o: RateLimitOptions) {
    this.ratePerMs = o.perMinute / 60_000;
    o.redis?.defineCommand("fleetTakeToken", { numberOfKeys: 1, lua: TAKE_LUA });
  }

  async take(bucket: string): Promise<Take> {
    const redis = this.o.redis as (Redis & { fleetTakeToken(key: string, capacity: number, rate: number): Promise<[number, number, number]> }) | undefined;
    if (redis?.status === "ready") {
      try {
        const [allowed, remaining, wait] = await redis.fleetTakeToken(`${this.o.keyPrefix ?? "fleet:ratelimit:"}${bucket}`, this.o.burst, this.ratePerMs);
        this.noteRedis(true);
        return { allowed: allowed === 1, remaining, retryAfterMs: wait };
      } catch (err) {
        this.noteRedis(false, err);
      }
    } else if (redis !== undefined) {
      this.noteRedis(false);
    }
    return this.takeLocal(bucket, performance.now());
  }

  /** The onRequest hook (after authentication): one token per request, OpenAI's headers, 429 with Retry-After. */
  readonly hook = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const t = await this.take(request.apiKeyId);
    reply.header("x-ratelimit-limit-requests", String(this.o.perMinute));
    reply.header("x-ratelimit-remaining-requests", String(t.remaining));
    if (t.allowed) return;
    const seconds = Math.max(1, Math.ceil(t.retryAfterMs / 1000));
    throw new ApiError(
      429,
      { message: `Rate limit reached for this API key: ${this.o.perMinute} requests per minute (bursts of ${this.o.burst}). Retry after ${seconds} s.`, type: "requests", param: null, code: "rate_limit_exceeded" },
      { "retry-after": String(seconds), "retry-after-ms": String(Math.max(1, Math.ceil(t.retryAfterMs))) },
    );
  };

  private takeLocal(bucket: string, now: number): Take {
    const b = this.local.get(bucket) ?? { tokens: this.o.burst, at: now };
    b.tokens = Math.min(this.o.burst, b.tokens + (now - b.at) * this.ratePerMs);
    b.at = now;
    const allowed = b.tokens >= 1;
    if (allowed) b.tokens -= 1;
    if (!this.local.has(bucket) && this.local.size >= MAX_LOCAL_BUCKETS) this.evictIdle(now);
    this.local.set(bucket, b);
    return { allowed, remaining: Math.floor(b.tokens), retryAfterMs: allowed ? 0 : Math.ceil((1 - b.tokens) / this.ratePerMs) };
  }

  /** Drop buckets that have refilled (forgetting them changes nothing); if none has, the oldest. */
  private evictIdle(now: number): void {
    for (const [k, b] of this.local) if (b.tokens + (now - b.at) * this.ratePerMs >= this.o.burst) this.local.delete(k);
    if (this.local.size >= MAX_LOCAL_BUCKETS) this.local.delete(this.local.keys().next().value as string);
  }

  private noteRedis(ok: boolean, err?: unknown): void {
    if (ok === !this.redisDown) return;
    this.redisDown = !ok;
    if (ok) this.o.log?.info("rate limit: Redis reachable again; buckets shared across replicas");
    else this.o.log?.warn({ reason: (err as Error | undefined)?.message }, "rate limit: Redis unreachable; each replica limits on its own until it is back");
  }
}
