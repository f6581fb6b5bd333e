/**
 * Postgres figures for the fault suite and the bench: the database's deadlock counter, the jobs table's size, and a
 * scratch database so a run's deadlock count is its own (the counter is per database; other test runs share `test`).
 */
import pg from "pg";

/** pg_stat_database.deadlocks for the connection's database, read from a fresh statistics snapshot. */
export async function deadlockCount(db: pg.Pool | pg.Client): Promise<number> {
  await db.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await db.query<{ n: string }>("SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()");
  return Number(rows[0]?.n ?? 0);
}

export interface TableSizes {
  /** Heap + indexes + TOAST, bytes. */
  total: number;
  heap: number;
  indexes: number;
}

/** Sizes of `table` as the connection's search_path resolves it (the run's schema). */
export async function tableSizes(db: pg.Pool, table = "jobs"): Promise<TableSizes> {
  const { rows } = await db.query<{ total: string; heap: string; indexes: string }>(
    "SELECT pg_total_relation_size(t) AS total, pg_relation_size(t) AS heap, pg_indexes_size(t) AS indexes FROM (SELECT $1::regclass AS t) s",
    [table],
  );
  const r = rows[0]!;
  return { total: Number(r.total), heap: Number(r.heap), indexes: Number(r.indexes) };
}

export interface ScratchDatabase {
  url: string;
  /**
   * The deadlock count once every other session has left (backends report their statistics when they exit, so
   * a count read while workers' sessions live could miss theirs), then the database is dropped unless `keep`.
   */
  finish(keep: boolean): Promise<number>;
}

/** Creates database `name` next to `url`'s; undefined when this role may not (then share the given database). */
export async function createScratchDatabase(url: string, name: string): Promise<ScratchDatabase | undefined> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new TypeError(`database name must be a plain identifier: ${name}`);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch {
    return undefined;
  } finally {
    await admin.end();
  }
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.toString(),
    async finish(keep) {
      const client = new pg.Client({ connectionString: scratch.toString() });
      await client.connect();
      let deadlocks: number;
      try {
        for (let i = 0; i < 100; i++) {
          const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
          if (Number(rows[0]!.n) === 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        deadlocks = await deadlockCount(client);
      } finally {
        await client.end();
      }
      if (!keep) {
        const admin2 = new pg.Client({ connectionString: url });
        await admin2.connect();
        await admin2.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => admin2.end());
      }
      return deadlocks;
    },
  };
}
