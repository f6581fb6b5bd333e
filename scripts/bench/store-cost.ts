/**
 * Postgres work per job at saturation, from counters (pg_stat_statements is not preloaded here):
 *   statements  pg_stat_database xact_commit + xact_rollback of the run's scratch database. Workers run every
 *               statement in autocommit (no BEGIN on their path), so a transaction is a statement.
 *   rows        tup_inserted + tup_updated + tup_deleted of that database.
 *   WAL bytes   pg_wal_lsn_diff of pg_current_wal_lsn() — cluster-wide: other databases' writes meanwhile count too,
 *               so the meter also says how many transactions other databases committed in the window.
 * Backends report these counters at transaction end at most once a second, and when they exit: `end` waits until
 * every session that was not there at `begin` (the workers') has gone, and flushes its own with
 * pg_stat_force_next_flush() (Postgres 15+). The bench's own statements in the window (its progress polls) are
 * passed in and subtracted.
 */
import pg from "pg";

interface Reading {
  statements: number;
  /** This meter's own queries before the reading's: they are transactions in the database too. */
  ownQueries: number;
  rows: number;
  otherStatements: number;
  lsn: string;
}

export interface StoreCost {
  statementsPerJob: number;
  rowsPerJob: number;
  walBytesPerJob: number;
  /** Transactions other databases of the cluster committed meanwhile: > 0 means the WAL figure includes theirs. */
  otherDatabasesStatements: number;
}

export class StoreCostMeter {
  private client: pg.Client | undefined;
  private before: Reading | undefined;
  private sessions = new Set<number>();
  private queries = 0;

  /** `url`: the database the workers write to (pg_stat_database is per database). */
  constructor(private readonly url: string) {}

  async begin(): Promise<void> {
    this.client = new pg.Client({ connectionString: this.url });
    await this.client.connect();
    const rows = await this.pids();
    this.sessions = new Set(rows.map((r) => r.pid));
    this.before = await this.read();
  }

  /** After the workers exited. `ownStatements`: statements the bench itself ran on this database since `begin`. */
  async end(jobs: number, ownStatements: number): Promise<StoreCost> {
    const client = this.client!;
    try {
      for (let i = 0; i < 100; i++) {
        const rows = await this.pids();
        if (rows.every((r) => this.sessions.has(r.pid))) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await this.read();
      const b = this.before!;
      const statements = after.statements - b.statements - ownStatements - (after.ownQueries - b.ownQueries);
      const { rows } = await client.query<{ bytes: string }>("SELECT pg_wal_lsn_diff($1, $2) AS bytes", [after.lsn, b.lsn]);
      return {
        statementsPerJob: statements / jobs,
        rowsPerJob: (after.rows - b.rows) / jobs,
        walBytesPerJob: Number(rows[0]!.bytes) / jobs,
        otherDatabasesStatements: after.otherStatements - b.otherStatements,
      };
    } finally {
      await client.end();
    }
  }

  private async pids(): Promise<{ pid: number }[]> {
    return (await this.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).rows;
  }

  private query<R extends pg.QueryResultRow>(sql: string): Promise<pg.QueryResult<R>> {
    this.queries += 1;
    return this.client!.query<R>(sql);
  }

  private async read(): Promise<Reading> {
    await this.query("SELECT pg_stat_force_next_flush()");
    await this.query("SELECT pg_stat_clear_snapshot()");
    const ownQueries = this.queries;
    const { rows } = await this.query<{ mine: boolean; xacts: string; tuples: string; lsn: string }>(
      `SELECT datname = current_database() AS mine, xact_commit + xact_rollback AS xacts,
              tup_inserted + tup_updated + tup_deleted AS tuples, pg_current_wal_lsn()::text AS lsn
         FROM pg_stat_database WHERE datname IS NOT NULL`,
    );
    const mine = rows.find((r) => r.mine)!;
    const others = rows.filter((r) => !r.mine).reduce((s, r) => s + Number(r.xacts), 0);
    return { statements: Number(mine.xacts), ownQueries, rows: Number(mine.tuples), otherStatements: others, lsn: mine.lsn };
  }
}
