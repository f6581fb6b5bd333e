/**
 * One transaction on one pooled connection: BEGIN, `work`, COMMIT, or ROLLBACK when `work` throws. A connection
 * whose ROLLBACK fails is broken and is destroyed instead of going back to the pool.
 */
import type pg from "pg";
import { toStoreError } from "./store-errors.ts";

export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw toStoreError(err, "begin");
  }
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    client.release();
    return result;
  } catch (err) {
    const rollbackFailed = await client.query("ROLLBACK").then(() => false, () => true);
    client.release(rollbackFailed);
    throw err;
  }
}
