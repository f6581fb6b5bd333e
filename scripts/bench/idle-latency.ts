/**
 * The latency one job pays on an idle fleet: jobs submitted one at a time to a worker already long-polling, each
 * timed from submit to its record being readable — the NOTIFY its terminal write sends at commit (shared/store
 * jobs-sql.ts), received on a LISTEN connection, so there is no polling error — minus the provider's own time (the
 * record's latency_ms). Where the time goes, from the record's timestamps (Postgres now(): a statement's start):
 *   receive + claim    created_at (the producer's clock, just before SendMessageBatch) → started_at
 *   call overhead + complete   started_at → finished_at, minus latency_ms
 *   publish + read     finished_at → the notification here (the complete statement's run and commit, NOTIFY)
 */
import pg from "pg";
import type { JobInput } from "../../shared/contract.ts";
import type { Producer } from "../../producer/producer.ts";
import { DONE_CHANNEL_SQL } from "../../shared/store/jobs-sql.ts";
import { percentile } from "../fleet/stats.ts";

export interface IdleLatency {
  jobs: number;
  addedP50: number;
  addedP99: number;
  /** p50 of each step, ms. */
  receiveClaimP50: number;
  callCompleteP50: number;
  publishReadP50: number;
  providerP50: number;
}

/** Epoch ms with sub-ms precision, on the clock Postgres's now() and the producer's Date also read. */
const epochMs = () => performance.timeOrigin + performance.now();

/** `url`: the run's schema-scoped database URL (the done channel is per schema). */
export async function measureIdleLatency(o: { url: string; producer: Producer; jobs: number; input: (i: number) => JobInput }): Promise<IdleLatency> {
  const client = new pg.Client({ connectionString: o.url });
  await client.connect();
  const waiting = new Map<string, (at: number) => void>();
  client.on("notification", (n) => {
    const at = epochMs();
    for (const id of (n.payload ?? "").split(" ")) waiting.get(id)?.(at);
  });
  const samples: { added: number; receiveClaim: number; callComplete: number; publishRead: number; provider: number }[] = [];
  try {
    const { rows } = await client.query<{ channel: string }>(`SELECT ${DONE_CHANNEL_SQL} AS channel`);
    await client.query(`LISTEN ${client.escapeIdentifier(rows[0]!.channel)}`);
    const run = Date.now().toString(36);
    for (let i = 0; i < o.jobs; i++) {
      const id = `idle-${run}-${i}`;
      const done = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`idle latency: job ${id} not done in 30 s`)), 30_000);
        waiting.set(id, (at) => (clearTimeout(timer), resolve(at)));
      });
      const t0 = epochMs();
      await o.producer.submit({ ...o.input(i), id });
      const readable = await done;
      waiting.delete(id);
      const r = (
        await client.query<{ status: string; created: number; started: number; finished: number; latency_ms: number | null }>(
          `SELECT status, extract(epoch FROM created_at) * 1000 AS created, extract(epoch FROM started_at) * 1000 AS started,
                  extract(epoch FROM finished_at) * 1000 AS finished, latency_ms FROM jobs WHERE id = $1`,
          [id],
        )
      ).rows[0];
      if (r?.status !== "succeeded") throw new Error(`idle latency: job ${id} ended ${r?.status ?? "without a record"}`);
      const provider = r.latency_ms ?? 0;
      const [created, started, finished] = [r.created, r.started, r.finished].map(Number) as [number, number, number];
      samples.push({ added: readable - t0 - provider, receiveClaim: started - created, callComplete: finished - started - provider, publishRead: readable - finished, provider });
    }
  } finally {
    await client.end();
  }
  const p = (k: keyof (typeof samples)[number], q: number) => percentile(samples.map((s) => s[k]), q);
  return {
    jobs: samples.length,
    addedP50: p("added", 50),
    addedP99: p("added", 99),
    receiveClaimP50: p("receiveClaim", 50),
    callCompleteP50: p("callComplete", 50),
    publishReadP50: p("publishRead", 50),
    providerP50: p("provider", 50),
  };
}
