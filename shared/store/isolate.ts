/**
 * Row isolation for batched statements. One row the server refuses (a NUL in an id, a value out of range) fails
 * the whole multi-row statement it rides in; without isolation one job's data fails every other job of its batch.
 */
import type { StoreError } from "../errors.ts";
import { toStoreError } from "./store-errors.ts";

export interface Isolated<T, R> {
  rows: R[];
  /** Items whose statement failed alone, each with its error. */
  failed: [T, StoreError][];
}

/**
 * Run `exec` on the batch. On a non-retryable error, split the batch in halves and run each, down to the single
 * items that fail alone: a batch of n with one bad row costs about 2·log2(n) extra statements, and only once.
 * Retryable errors (connection lost, deadlock) are the batch's, not a row's: they throw, as they always did.
 */
export async function isolateFailures<T, R>(batch: T[], operation: string, exec: (part: T[]) => Promise<R[]>): Promise<Isolated<T, R>> {
  const out: Isolated<T, R> = { rows: [], failed: [] };
  await run(batch, operation, exec, out);
  return out;
}

async function run<T, R>(batch: T[], operation: string, exec: (part: T[]) => Promise<R[]>, out: Isolated<T, R>): Promise<void> {
  if (batch.length === 0) return;
  try {
    out.rows.push(...(await exec(batch)));
    return;
  } catch (err) {
    const e = toStoreError(err, operation);
    if (e.retryable) throw e;
    if (batch.length === 1) {
      out.failed.push([batch[0] as T, e]);
      return;
    }
  }
  const half = Math.ceil(batch.length / 2);
  await run(batch.slice(0, half), operation, exec, out);
  await run(batch.slice(half), operation, exec, out);
}
