/**
 * The fleet-wide spend ledger: one Redis key per provider and hour (`<prefix>spend:<provider>:<hour>`), raised with
 * INCRBYFLOAT and expiring two hours after its last write. The check against the ceiling and the increment run in
 * one Lua script, so two workers cannot both pass a ceiling that has room for one. A command waits at most
 * `commandTimeoutMs`, queued while (re)connecting included (ioredis starts the timer before queueing), so the first
 * calls after start-up wait for the connection instead of failing; the router treats an unreachable ledger as
 * "over the ceiling" — a Redis outage stops paid spending, never lets it run unmetered.
 */
import { Redis } from "ioredis";
import type { SpendLedger } from "./spend-ledger.ts";

export interface RedisSpendLedgerOptions {
  url: string;
  /** Prepended to every key. Default "fleet:". */
  keyPrefix?: string;
  /** Per-command deadline, ms. Default 1,000. */
  commandTimeoutMs?: number;
}

/** Two hours: the current hour's key outlives its hour, and nothing older lingers. */
const KEY_TTL_SECONDS = 7_200;

/** KEYS[1] the hour's key; ARGV usd, ceiling, ttl. Floats travel as strings: Lua numbers would be cut to integers. */
const RESERVE = `
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, tostring(spent)} end
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, total}
`;

export class RedisSpendLedger implements SpendLedger {
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(o: RedisSpendLedgerOptions) {
    this.prefix = o.keyPrefix ?? "fleet:";
    this.client = new Redis(o.url, {
      maxRetriesPerRequest: 1,
      commandTimeout: o.commandTimeoutMs ?? 1_000,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
    });
    // Failures surface on the commands (the router records them); without a listener ioredis prints each reconnect.
    this.client.on("error", () => undefined);
  }

  async reserve(provider: string, hour: number, usd: number, ceilingUsd: number): Promise<{ ok: boolean; spentUsd: number }> {
    if (!Number.isFinite(ceilingUsd)) return { ok: true, spentUsd: await this.add(provider, hour, usd) };
    const [ok, total] = (await this.client.eval(RESERVE, 1, this.key(provider, hour), String(usd), String(ceilingUsd), String(KEY_TTL_SECONDS))) as [number, string];
    return { ok: ok === 1, spentUsd: Number(total) };
  }

  async add(provider: string, hour: number, deltaUsd: number): Promise<number> {
    const key = this.key(provider, hour);
    const replies = await this.client.multi().incrbyfloat(key, deltaUsd).expire(key, KEY_TTL_SECONDS).exec();
    if (replies === null) throw new Error("spend ledger: transaction discarded");
    const failed = replies.find(([err]) => err !== null);
    if (failed !== undefined) throw failed[0];
    return Number(replies[0]?.[1]);
  }

  async close(): Promise<void> {
    if (this.client.status === "ready") await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  private key(provider: string, hour: number): string {
    return `${this.prefix}spend:${provider}:${hour}`;
  }
}
