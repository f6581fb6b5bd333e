/**
 * Webhooks named by jobs (`webhook_url` on POST /v1/jobs). The queue message has no field for one, so the API keeps
 * it in `api_job_webhooks`, keyed by (job id, tenant), and moves it to the outbox once the job is terminal: at once
 * when the completion feed announces the id, and by a sweep over recently finished jobs for announcements this
 * process missed (it was down, its LISTEN connection was). Any replica may move a row (SKIP LOCKED; the outbox
 * ignores a repeat), and the move is one transaction: a row leaves the table only as its delivery is stored.
 */
import type pg from "pg";
import type { Logger } from "../../shared/logger.ts";
import type { JobStore } from "../../shared/store/jobs.ts";
import { toStoreError } from "../../shared/store/store-errors.ts";
import { jobView } from "./job-schemas.ts";
import type { WebhookOutbox } from "./webhook-outbox.ts";

export const JOB_COMPLETED_EVENT = "job.completed";
/** Rows moved per transaction. */
const MOVE_BATCH = 500;
/** A sweep looks this far behind the previous one's start: commits land after `finished_at` is taken. */
const SWEEP_OVERLAP = "60 seconds";

const ENDED_BY_ID_SQL = `
SELECT w.tenant, w.job_id, w.url FROM api_job_webhooks w JOIN jobs j ON j.id = w.job_id AND j.tenant = w.tenant
 WHERE w.job_id = ANY($1::text[]) AND j.status IN ('succeeded', 'failed', 'dead', 'expired')
 ORDER BY w.job_id, w.tenant LIMIT ${MOVE_BATCH} FOR UPDATE OF w SKIP LOCKED`;
// Through jobs_finished_idx: only jobs finished since the watermark are looked at, however many webhooks wait.
const ENDED_SINCE_SQL = `
SELECT w.tenant, w.job_id, w.url FROM jobs j JOIN api_job_webhooks w ON w.job_id = j.id AND w.tenant = j.tenant
 WHERE j.status IN ('succeeded', 'failed', 'dead', 'expired') AND j.finished_at >= $1::timestamptz
 ORDER BY w.job_id, w.tenant LIMIT ${MOVE_BATCH} FOR UPDATE OF w SKIP LOCKED`;
const ENDED_ANY_SQL = ENDED_SINCE_SQL.replace("j.finished_at >= $1::timestamptz", "true");

export interface JobWebhooksOptions {
  pool: pg.Pool;
  store: JobStore;
  outbox: WebhookOutbox;
  log: Pick<Logger, "warn">;
}

export class JobWebhooks {
  /** The last sweep's start minus the overlap (database time); undefined until the first sweep, which looks at all. */
  private since: Date | undefined;
  private readonly noticed = new Set<string>();
  private moving: Promise<void> | undefined;

  constructor(private readonly o: JobWebhooksOptions) {
    o.outbox.addSweep(() => this.sweep());
  }

  /** Remember each job's webhook (a later POST of the same id replaces the url). */
  async register(tenant: string, entries: { jobId: string; url: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.query(
      `INSERT INTO api_job_webhooks (tenant, job_id, url) SELECT $1, * FROM unnest($2::text[], $3::text[])
       ON CONFLICT (job_id, tenant) DO UPDATE SET url = excluded.url`,
      [tenant, entries.map((e) => e.jobId), entries.map((e) => e.url)],
    );
  }

  /** Drop webhooks of jobs that were never sent. */
  async forget(tenant: string, jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.query("DELETE FROM api_job_webhooks WHERE tenant = $1 AND job_id = ANY($2::text[])", [tenant, jobIds]);
  }

  /**
   * Announced ids (the completion feed's listener): moved in the background, one move at a time, the ids announced
   * meanwhile gathered for the next; never throws (the sweep catches what a failed move left).
   */
  notice(ids: string[]): void {
    for (const id of ids) this.noticed.add(id);
    this.moving ??= this.drainNoticed().finally(() => {
      this.moving = undefined;
    });
  }

  /** Resolves when the ids noticed so far have been moved (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.moving) await this.moving;
  }

  /** Move the webhooks of every job that ended since the last sweep (all, the first time). */
  async sweep(): Promise<void> {
    const next = (await this.query<{ since: Date }>(`SELECT now() - interval '${SWEEP_OVERLAP}' AS since`, []))[0]!.since;
    const since = this.since;
    while ((await this.move(since === undefined ? ENDED_ANY_SQL : ENDED_SINCE_SQL, since === undefined ? [] : [since])) === MOVE_BATCH);
    this.since = next;
  }

  /** Move the webhooks of these ids whose jobs have ended. */
  async moveEnded(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += MOVE_BATCH) {
      const part = ids.slice(i, i + MOVE_BATCH);
      while ((await this.move(ENDED_BY_ID_SQL, [part])) === MOVE_BATCH);
    }
  }

  private async drainNoticed(): Promise<void> {
    while (this.noticed.size > 0) {
      const ids = [...this.noticed];
      this.noticed.clear();
      try {
        await this.moveEnded(ids);
      } catch (err) {
        this.o.log.warn({ reason: (err as Error).message }, "job webhooks: moving ended jobs failed; the next sweep retries");
      }
    }
  }

  /** One transaction: lock up to a batch of rows, store their deliveries, delete them. Returns how many moved. */
  private async move(select: string, values: unknown[]): Promise<number> {
    let client: pg.PoolClient;
    try {
      client = await this.o.pool.connect();
    } catch (err) {
      throw toStoreError(err, "job_webhooks_move");
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const rows = (await client.query<{ tenant: string; job_id: string; url: string }>(select, values)).rows;
      if (rows.length > 0) {
        // Terminal records never change again, so reading them outside this transaction is safe.
        const records = new Map((await this.o.store.getMany(rows.map((r) => r.job_id))).map((r) => [r.id, r]));
        const events = rows.flatMap((r) => {
          const record = records.get(r.job_id);
          return record ? [{ tenant: r.tenant, url: r.url, event: JOB_COMPLETED_EVENT, subjectId: r.job_id, data: jobView(record) }] : [];
        });
        await this.o.outbox.enqueue(events, client);
        await client.query("DELETE FROM api_job_webhooks WHERE (job_id, tenant) IN (SELECT * FROM unnest($1::text[], $2::text[]))", [rows.map((r) => r.job_id), rows.map((r) => r.tenant)]);
      }
      await client.query("COMMIT");
      if (rows.length > 0) this.o.outbox.kick();
      return rows.length;
    } catch (err) {
      // A client whose ROLLBACK fails is broken: destroyed instead of going back to the pool.
      broken = await client.query("ROLLBACK").then(() => false, () => true);
      throw toStoreError(err, "job_webhooks_move");
    } finally {
      client.release(broken);
    }
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.o.pool.query<R>(text, values)).rows;
    } catch (err) {
      throw toStoreError(err, "job_webhooks");
    }
  }
}
