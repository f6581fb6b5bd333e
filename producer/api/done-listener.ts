/**
 * The sources of a CompletionFeed. Postgres: one dedicated connection per API process LISTENs on the jobs' done
 * channel (terminal writes NOTIFY their ids, see shared/store/jobs-sql.ts) and reconnects with backoff after losing
 * the connection; each (re)connection announces "anything may have changed", since notifications sent while it was
 * down are gone. Redis: the results cache's `done` channel (succeeded jobs only: the worker caches only those).
 */
import pg from "pg";
import { backoffMs } from "../../shared/backoff.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ResultsCache } from "../../shared/store/results-cache.ts";
import type { CompletionFeed } from "./completion-feed.ts";

export interface PostgresDoneOptions {
  /** Connection settings of the API's pool (same database and credentials); a client of its own is made from them. */
  connection: pg.ClientConfig;
  /** The channel (JobStore.doneChannel()). */
  channel: string;
  feed: CompletionFeed;
  log: Pick<Logger, "warn" | "info">;
}

export class PostgresDoneListener {
  private client: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private down = false;

  constructor(private readonly o: PostgresDoneOptions) {}

  /** Resolves once listening, or after the first failure (it keeps retrying in the background). */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ ...this.o.connection, keepAlive: true });
    client.on("error", () => this.lost(client));
    client.on("end", () => this.lost(client));
    client.on("notification", (n) => {
      if (n.channel === this.o.channel && n.payload) this.o.feed.announce(n.payload.split(" "));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.o.channel)}`);
    } catch (err) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      this.note(false, err);
      this.schedule();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.note(true);
    this.o.feed.announceAll();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.removeAllListeners("end");
    void client.end().catch(() => undefined);
    this.note(false);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), backoffMs(this.attempt++, 200, 5_000));
  }

  private note(up: boolean, err?: unknown): void {
    if (up === !this.down) return;
    this.down = !up;
    if (up) this.o.log.info("LISTEN connection back: long polls wake on job completion again");
    else this.o.log.warn({ reason: (err as Error | undefined)?.message }, "LISTEN connection lost: long polls wait for Redis or their timeout until it is back");
  }
}

/** Announce Redis's done channel on the feed; returns the unsubscriber. */
export async function listenRedisDone(cache: ResultsCache, feed: CompletionFeed): Promise<() => Promise<void>> {
  return cache.subscribe((id) => feed.announce([id]));
}
