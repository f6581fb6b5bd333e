import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { toStoreError } from "./store-errors.ts";

export interface PoolOptions {
  url: string;
  poolSize: number;
  /** Schema for every object and query (search_path); created when missing. Default: the server's default. */
  schema?: string;
  /** How long a query may wait for a connection before failing as STORE_UNAVAILABLE. Default 5,000 ms. */
  connectTimeoutMs?: number;
  /**
   * Asked for each new connection, so a rotated password reaches the next connection without a restart. The URL
   * must then carry no password. Unset: the URL's password.
   */
  password?: () => string | Promise<string>;
  /** Idle-client errors (server restarts): the next query reports them, this is only for logging. */
  onError?: (err: Error) => void;
}

/**
 * The same database URL with `schema` as its search_path, for processes configured by URL alone (workers spawned
 * by the fault suite and the benchmark, the DLQ tool in tests). The schema must already exist.
 */
export function schemaScopedUrl(url: string, schema: string): string {
  if (!SCHEMA_PATTERN.test(schema)) throw new TypeError(`schema must match ${SCHEMA_PATTERN}`);
  const scoped = new URL(url);
  scoped.searchParams.set("options", `-c search_path=${schema}`);
  return scoped.toString();
}

/** Schema names are interpolated into connection options and DDL, so only plain identifiers pass. */
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A pg pool whose connections all use `schema` as their search_path. The schema is created before the pool is
 * returned, so migrations and queries can use unqualified names.
 */
export async function createPool(o: PoolOptions): Promise<pg.Pool> {
  if (o.schema !== undefined && !SCHEMA_PATTERN.test(o.schema)) {
    throw new TypeError(`schema must match ${SCHEMA_PATTERN}`);
  }
  const pool = new pg.Pool({
    // pg lets a connection string's (even empty) password win over `password`, so the URL is parsed here instead.
    ...(o.password === undefined ? { connectionString: o.url } : { ...parseIntoClientConfig(o.url), password: o.password }),
    max: o.poolSize,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5_000,
    keepAlive: true,
    ...(o.schema === undefined ? {} : { options: `-c search_path=${o.schema}` }),
  });
  // Without a listener an idle client's error would crash the process.
  pool.on("error", (err) => o.onError?.(err));
  if (o.schema !== undefined) {
    try {
      await pool.query(`CREATE SCHEMA IF NOT EXISTS ${o.schema}`);
    } catch (err) {
      // Two processes creating the same schema at once: the loser sees a unique violation; the schema exists.
      if (isDuplicate(err)) return pool;
      await pool.end().catch(() => undefined);
      throw toStoreError(err, "create schema");
    }
  }
  return pool;
}

function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "23505" || code === "42P06";
}

/** One `SELECT 1`: resolves when the database answers, else a StoreError (which never names the connection). */
export async function ping(pool: pg.Pool): Promise<void> {
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    throw toStoreError(err, "ping");
  }
}
