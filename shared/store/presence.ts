/**
 * The `workers` table (migration 0005): each worker's presence row, written by its presence loop and read by
 * `fleet status`. Liveness is judged on the database's clock: a row unseen for three of its intervals is gone.
 */
import type pg from "pg";
import { toStoreError } from "./store-errors.ts";

export interface WorkerPresence {
  workerId: string;
  host: string;
  pid: number;
  startedAt: Date;
  /** How often the row is rewritten, ms. */
  intervalMs: number;
  state: string;
  held: number;
  inFlight: number;
  concurrencyLimit: number;
  intakePaused: boolean;
  storeWritesHealthy: boolean;
  /** The router's health per provider (RouteHealth objects). */
  providers: PresenceProvider[];
  /** Outcome counters since start. */
  jobs: Record<string, number>;
  /** Per queue URL, ms. */
  queueWaitMs: Record<string, number>;
  opsPort?: number;
}

/** The fields of a provider's health that the fleet view reads. */
export interface PresenceProvider {
  name: string;
  state: string;
  inFlight: number;
  maxInFlight: number;
  lastErrorCode?: string;
  spentUsdThisHour?: number;
}

export interface SeenWorker extends WorkerPresence {
  seenAt: Date;
  seenAgoMs: number;
  /** Not rewritten for three intervals: killed, hung or cut off. */
  gone: boolean;
}

const BEAT_SQL = `
INSERT INTO workers AS w (worker_id, host, pid, started_at, seen_at, interval_ms, state, held, in_flight, concurrency_limit,
                          intake_paused, store_writes_healthy, providers, jobs, queue_wait_ms, ops_port)
VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14::jsonb, $15)
ON CONFLICT (worker_id) DO UPDATE SET
  seen_at = now(), interval_ms = excluded.interval_ms, state = excluded.state, held = excluded.held,
  in_flight = excluded.in_flight, concurrency_limit = excluded.concurrency_limit, intake_paused = excluded.intake_paused,
  store_writes_healthy = excluded.store_writes_healthy, providers = excluded.providers, jobs = excluded.jobs,
  queue_wait_ms = excluded.queue_wait_ms, ops_port = excluded.ops_port`;

const LIST_SQL = `
SELECT worker_id, host, pid, started_at, seen_at, interval_ms, state, held, in_flight, concurrency_limit, intake_paused,
       store_writes_healthy, providers, jobs, queue_wait_ms, ops_port,
       (extract(epoch FROM now() - seen_at) * 1000)::float8 AS seen_ago_ms,
       seen_at < now() - 3 * interval_ms * interval '1 millisecond' AS gone
  FROM workers
 ORDER BY started_at, worker_id`;

const REMOVE_SQL = `DELETE FROM workers WHERE worker_id = $1`;
const PRUNE_SQL = `DELETE FROM workers WHERE seen_at < now() - $1::int * interval '1 millisecond' RETURNING worker_id`;

interface Row {
  worker_id: string;
  host: string;
  pid: number;
  started_at: Date;
  seen_at: Date;
  interval_ms: number;
  state: string;
  held: number;
  in_flight: number;
  concurrency_limit: number;
  intake_paused: boolean;
  store_writes_healthy: boolean;
  providers: PresenceProvider[];
  jobs: Record<string, number>;
  queue_wait_ms: Record<string, number>;
  ops_port: number | null;
  seen_ago_ms: number;
  gone: boolean;
}

export class PresenceStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Insert or rewrite the worker's row, stamped with the database's now(). */
  async beat(p: WorkerPresence): Promise<void> {
    await this.query("workers_beat", BEAT_SQL, [
      p.workerId,
      p.host,
      p.pid,
      p.startedAt,
      Math.round(p.intervalMs),
      p.state,
      p.held,
      p.inFlight,
      p.concurrencyLimit,
      p.intakePaused,
      p.storeWritesHealthy,
      JSON.stringify(p.providers),
      JSON.stringify(p.jobs),
      JSON.stringify(p.queueWaitMs),
      p.opsPort ?? null,
    ]);
  }

  async remove(workerId: string): Promise<void> {
    await this.query("workers_remove", REMOVE_SQL, [workerId]);
  }

  /** Rows unseen for longer than `olderThanMs`; returns how many went. */
  async prune(olderThanMs: number): Promise<number> {
    return (await this.query("workers_prune", PRUNE_SQL, [Math.max(0, Math.round(olderThanMs))])).length;
  }

  /** Every row, oldest worker first, with how long ago it was written and whether it counts as gone. */
  async list(): Promise<SeenWorker[]> {
    const rows = await this.query<Row>("workers_list", LIST_SQL, []);
    return rows.map((r) => ({
      workerId: r.worker_id,
      host: r.host,
      pid: r.pid,
      startedAt: r.started_at,
      intervalMs: r.interval_ms,
      state: r.state,
      held: r.held,
      inFlight: r.in_flight,
      concurrencyLimit: r.concurrency_limit,
      intakePaused: r.intake_paused,
      storeWritesHealthy: r.store_writes_healthy,
      providers: r.providers,
      jobs: r.jobs,
      queueWaitMs: r.queue_wait_ms,
      ...(r.ops_port === null ? {} : { opsPort: r.ops_port }),
      seenAt: r.seen_at,
      seenAgoMs: Math.max(0, Math.round(r.seen_ago_ms)),
      gone: r.gone,
    }));
  }

  private async query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>({ name, text, values })).rows;
    } catch (err) {
      throw toStoreError(err, name);
    }
  }
}
