/**
 * One lock order: claims, completes, lease extensions and provider-call counts over the same ids, from many
 * connections at once and in shuffled orders, must never deadlock (a 12-minute soak once saw 1,430 of them).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import type { Job } from "../shared/contract.ts";
import { StoreError } from "../shared/errors.ts";
import type { JobStore } from "../shared/store/jobs.ts";
import { claimItem, job, result, StoreSchemas } from "./support/store-schema.ts";

const schemas = new StoreSchemas();
after(() => schemas.dropAll());

const CONNECTIONS = 6;
const RUN_MS = 4_000;
/** A fresh set of ids every so often, so completes do not leave every row terminal (terminal rows lock less). */
const GENERATION_MS = 500;
const IDS_PER_GENERATION = 24;

function shuffled<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const k = Math.floor(Math.random() * (i + 1));
    [a[i], a[k]] = [a[k] as T, a[i] as T];
  }
  return a;
}

const isDeadlock = (err: unknown) => err instanceof StoreError && (err.cause as { code?: string } | undefined)?.code === "40P01";

describe("lock order", () => {
  test("concurrent claim/extend/recordProviderCall/complete over shuffled ids: no deadlock", async () => {
    // Deadlocks are detected after deadlock_timeout (1 s by default); 50 ms lets a few seconds show many.
    const { stores, pools } = await schemas.setup(CONNECTIONS, { poolSize: 1, settings: { deadlock_timeout: "50ms" } });
    const serverDeadlocks = async () => Number((await (pools[0] as pg.Pool).query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")).rows[0].deadlocks);
    const serverBefore = await serverDeadlocks();
    const generations = Array.from({ length: Math.ceil(RUN_MS / GENERATION_MS) + 1 }, (_, g) =>
      Array.from({ length: IDS_PER_GENERATION }, (_, i) => job(`g${g}-job-${i}`)),
    );
    const start = Date.now();
    const counts = { ops: 0, deadlocks: 0 };
    const otherErrors: unknown[] = [];

    async function hammer(s: JobStore): Promise<void> {
      while (Date.now() - start < RUN_MS) {
        const jobs: Job[] = shuffled(generations[Math.floor((Date.now() - start) / GENERATION_MS)] ?? []).slice(0, 8 + Math.floor(Math.random() * 16));
        const ids = jobs.map((j) => j.id);
        const op = Math.floor(Math.random() * 8);
        try {
          // One worker id everywhere: every statement is entitled to every row, so every one of them takes locks.
          const out: unknown[] =
            op < 3 ? await s.claim(jobs.map((j) => claimItem(j, "w")))
            : op < 5 ? await s.extendLeases(ids, "w", 60_000)
            : op < 7 ? await s.recordProviderCall(ids)
            : await s.complete(ids.slice(0, 3).map((id) => result(id, "w")));
          otherErrors.push(...out.filter((o) => o instanceof Error));
        } catch (err) {
          if (isDeadlock(err)) counts.deadlocks++;
          else otherErrors.push(err);
        }
        counts.ops++;
      }
    }

    await Promise.all(stores.map(hammer));
    const serverAfter = await serverDeadlocks();
    console.log(`# ${counts.ops} batches, ${counts.deadlocks} deadlocks seen by this test; pg_stat_database.deadlocks +${serverAfter - serverBefore} (the whole server, other sessions included)`);
    assert.deepEqual(otherErrors, []);
    assert.ok(counts.ops > CONNECTIONS * 10, `only ${counts.ops} batches ran`);
    assert.equal(counts.deadlocks, 0);
  });
});
