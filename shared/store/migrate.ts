import { readdir, readFile } from "node:fs/promises";
import type pg from "pg";
import { toStoreError } from "./store-errors.ts";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);
const FILE_PATTERN = /^(\d{4})_[a-z0-9_]+\.sql$/;
/** First key of the two-key advisory lock; the second is the schema's hash, so schemas migrate independently. */
const LOCK_NAMESPACE = 0x6a6f6273; // "jobs"

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The numbered SQL files shipped next to this module, in order. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => FILE_PATTERN.test(n)).sort();
  const out: Migration[] = [];
  for (const name of names) {
    const version = Number(FILE_PATTERN.exec(name)?.[1]);
    if (out.some((m) => m.version === version)) throw new Error(`two migrations numbered ${version}`);
    out.push({ version, name, sql: await readFile(new URL(name, dir), "utf8") });
  }
  return out;
}

/**
 * Apply pending migrations in the pool's search_path schema. One transaction holding an advisory lock: workers
 * starting together queue on the lock, and the later ones find everything applied. A failed file rolls back all.
 */
export async function migrate(pool: pg.Pool, migrations?: Migration[]): Promise<void> {
  const all = migrations ?? (await loadMigrations());
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw toStoreError(err, "migrate");
  }
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", [LOCK_NAMESPACE]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const applied = new Set((await client.query<{ version: number }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version));
    for (const m of all) {
      if (applied.has(m.version)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
    }
    await client.query("COMMIT");
  } catch (err) {
    // A client whose ROLLBACK fails is broken: destroy it instead of returning it to the pool.
    const rollbackFailed = await client.query("ROLLBACK").then(() => false, () => true);
    client.release(rollbackFailed);
    throw toStoreError(err, "migrate");
  }
  client.release();
}
