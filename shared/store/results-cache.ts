/**
 * The hot path for results: finished records in Redis with a TTL, and a `done` channel that announces each id.
 * Postgres stays the source of truth, so Redis being down never fails a job: every method resolves (reads give
 * undefined), commands fail fast instead of queueing, and an outage is logged once when it starts and once when
 * it ends.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../logger.ts";
import { decodeRecord, encodeRecord, type JobRecord } from "./job-record.ts";

export interface ResultsCacheOptions {
  url: string;
  ttlSeconds: number;
  /** Prepended to every key and to the channel. Default "fleet:". */
  keyPrefix?: string;
  logger?: Pick<Logger, "warn" | "info">;
  /** Connect timeout per attempt, ms. Default 1,000. */
  connectTimeoutMs?: number;
}

/** Reconnect backoff: fast at first, then every 2 s for as long as the outage lasts. */
const retryStrategy = (times: number): number => Math.min(100 * 2 ** Math.min(times, 5), 2_000);

export class ResultsCache {
  private readonly client: Redis;
  private readonly subscribers = new Set<Redis>();
  private readonly prefix: string;
  private readonly channel: string;
  private readonly log: Pick<Logger, "warn" | "info"> | undefined;
  private down = false;
  private closed = false;

  constructor(private readonly o: ResultsCacheOptions) {
    this.prefix = o.keyPrefix ?? "fleet:";
    this.channel = `${this.prefix}done`;
    this.log = o.logger;
    // A command stuck on a half-open socket must not hold a worker's batch.
    this.client = this.connect({ enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 }, true);
  }

  /** True while commands can be sent. */
  get available(): boolean {
    return this.client.status === "ready";
  }

  /**
   * Resolves true once connected, false on the first failure or after the connect timeout. Optional: use it at
   * start-up to avoid skipping the first writes while the socket opens; nothing else depends on it.
   */
  async ready(): Promise<boolean> {
    if (this.available) return true;
    if (this.closed) return false;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off("ready", onReady).off("error", onError).off("end", onError);
        resolve(ok);
      };
      const onReady = () => done(true);
      const onError = () => done(false);
      const timer = setTimeout(onError, this.o.connectTimeoutMs ?? 1_000);
      this.client.once("ready", onReady).once("error", onError).once("end", onError);
    });
  }

  /** SET each record with the TTL and PUBLISH its id, all in one pipelined round trip. Skipped while Redis is down. */
  async putMany(records: JobRecord[]): Promise<void> {
    if (records.length === 0 || !this.available) return;
    const pipeline = this.client.pipeline();
    for (const r of records) {
      pipeline.set(this.key(r.id), encodeRecord(r), "EX", this.o.ttlSeconds);
      pipeline.publish(this.channel, r.id);
    }
    try {
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([err]) => err);
      if (failed) this.noteFailure(failed[0] as Error, "putMany");
    } catch (err) {
      this.noteFailure(err, "putMany");
    }
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.getMany([id]))[0];
  }

  /** Same order as `ids`; undefined for misses and for everything while Redis is down. */
  async getMany(ids: string[]): Promise<(JobRecord | undefined)[]> {
    const misses = ids.map(() => undefined);
    if (ids.length === 0 || !this.available) return misses;
    try {
      const values = await this.client.mget(ids.map((id) => this.key(id)));
      return values.map((v) => (v === null ? undefined : decodeRecord(v)));
    } catch (err) {
      this.noteFailure(err, "getMany");
      return misses;
    }
  }

  /**
   * Call `onDone(id)` for every id published on the done channel. A dedicated connection that resubscribes
   * after outages; resolves once subscribed, or at once (still retrying) when Redis is down. Returns its closer.
   */
  async subscribe(onDone: (id: string) => void): Promise<() => Promise<void>> {
    // Subscriptions may wait in the offline queue: they are replayed when the connection comes back.
    const sub = this.connect({ enableOfflineQueue: true, maxRetriesPerRequest: null }, false);
    this.subscribers.add(sub);
    sub.on("message", (channel: string, id: string) => {
      if (channel === this.channel) onDone(id);
    });
    const subscribed = sub.subscribe(this.channel).then(
      () => true,
      () => false,
    );
    const connected = await new Promise<boolean>((resolve) => {
      if (sub.status === "ready") return resolve(true);
      const timer = setTimeout(() => finish(false), this.o.connectTimeoutMs ?? 1_000);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        sub.off("ready", onReady).off("error", onError);
        resolve(ok);
      };
      const onReady = () => finish(true);
      const onError = () => finish(false);
      sub.once("ready", onReady).once("error", onError);
    });
    if (connected) await subscribed;
    return async () => {
      this.subscribers.delete(sub);
      await quit(sub);
    };
  }

  /** Close every connection; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [this.client, ...this.subscribers];
    this.subscribers.clear();
    await Promise.all(all.map(quit));
  }

  private key(id: string): string {
    return `${this.prefix}job:${id}`;
  }

  /** `tracksOutage`: the command connection decides `down`; subscriber connections only retry quietly. */
  private connect(extra: Pick<RedisOptions, "enableOfflineQueue" | "maxRetriesPerRequest" | "commandTimeout">, tracksOutage: boolean): Redis {
    const client = new Redis(this.o.url, { ...extra, connectTimeout: this.o.connectTimeoutMs ?? 1_000, retryStrategy });
    // Without an error listener ioredis prints every failed reconnect; one line per outage is enough.
    client.on("error", (err: Error) => {
      if (tracksOutage) this.noteFailure(err, "connection");
    });
    if (tracksOutage) client.on("ready", () => this.noteRecovery());
    return client;
  }

  private noteFailure(err: unknown, operation: string): void {
    if (this.down || this.closed) return;
    this.down = true;
    const e = err as { code?: unknown; message?: unknown } | null;
    this.log?.warn({ operation, code: e?.code, reason: e?.message }, "redis unavailable; results go to Postgres only until it is back");
  }

  private noteRecovery(): void {
    if (!this.down) return;
    this.down = false;
    this.log?.info("redis reachable again");
  }
}

/** QUIT when connected (flushes replies), else drop the socket and stop reconnecting. */
async function quit(client: Redis): Promise<void> {
  if (client.status === "ready") {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
