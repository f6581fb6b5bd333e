/**
 * What the fleet finished over a recent window, from the jobs table (the finished_at partial index keeps it a range
 * scan): counts by outcome and the end-to-end latency (created_at, the producer's submit time → finished_at).
 */
import type pg from "pg";
import { toStoreError } from "./store-errors.ts";

export interface Throughput {
  windowMs: number;
  finished: number;
  succeeded: number;
  failed: number;
  dead: number;
  expired: number;
  /** Finished jobs per second over the window. */
  perSecond: number;
  /** Submit → result of the succeeded ones, ms; null when none succeeded. */
  p50Ms: number | null;
  p95Ms: number | null;
}

const LATENCY = `extract(epoch FROM j.finished_at - j.created_at) * 1000`;
const THROUGHPUT_SQL = `
SELECT count(*)::int AS finished,
       count(*) FILTER (WHERE j.status = 'succeeded')::int AS succeeded,
       count(*) FILTER (WHERE j.status = 'failed')::int AS failed,
       count(*) FILTER (WHERE j.status = 'dead')::int AS dead,
       count(*) FILTER (WHERE j.status = 'expired')::int AS expired,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY ${LATENCY}) FILTER (WHERE j.status = 'succeeded'))::float8 AS p50_ms,
       (percentile_cont(0.95) WITHIN GROUP (ORDER BY ${LATENCY}) FILTER (WHERE j.status = 'succeeded'))::float8 AS p95_ms
  FROM jobs j
 WHERE j.finished_at >= now() - $1::int * interval '1 millisecond'
   AND j.status IN ('succeeded', 'failed', 'dead', 'expired')`;

interface Row {
  finished: number;
  succeeded: number;
  failed: number;
  dead: number;
  expired: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

/** Counts and latency of the jobs that ended in the last `windowMs` (database clock). */
export async function throughput(pool: pg.Pool, windowMs: number): Promise<Throughput> {
  let row: Row | undefined;
  try {
    row = (await pool.query<Row>({ name: "jobs_throughput", text: THROUGHPUT_SQL, values: [Math.round(windowMs)] })).rows[0];
  } catch (err) {
    throw toStoreError(err, "jobs_throughput");
  }
  const r = row ?? { finished: 0, succeeded: 0, failed: 0, dead: 0, expired: 0, p50_ms: null, p95_ms: null };
  const ms = (v: number | null) => (v === null ? null : Math.round(v));
  return {
    windowMs,
    finished: r.finished,
    succeeded: r.succeeded,
    failed: r.failed,
    dead: r.dead,
    expired: r.expired,
    perSecond: Math.round((r.finished / (windowMs / 1000)) * 100) / 100,
    p50Ms: ms(r.p50_ms),
    p95Ms: ms(r.p95_ms),
  };
}
