/**
 * `make demo`: the whole fleet end to end on embedded defaults, from a fresh clone (scripts/local/stack.ts says
 * which). Starts several real worker processes, submits the sample batch, waits for every result by id, prints a
 * summary and one JSON line.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { SingleBar, Presets } from "cli-progress";
import type { JobInput } from "../shared/contract.ts";
import { runCleanup, type CleanupStep } from "../shared/shutdown.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { Producer } from "../producer/producer.ts";
import { ResultReader } from "../producer/results.ts";
import { percentile, round } from "./fleet/stats.ts";
import { startLocalStack } from "./local/stack.ts";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const WORKERS = Number(process.env.DEMO_WORKERS ?? 3);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const cleanup: CleanupStep[] = [];
  try {
    const stack = await startLocalStack({ env: process.env, workers: WORKERS, queuePrefix: "demo", logDir: resolve(ROOT, "out/demo-logs"), say }, cleanup);
    const { pool, queue, queueUrl, workers } = stack;
    say(`ops: ${(await Promise.all(stack.opsUrls.map(readiness))).join(", ")}`);

    // --- submit and wait --------------------------------------------------------------------------
    const inputs = readFileSync(resolve(ROOT, "scripts/data/sample-prompts.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as JobInput);
    const started = Date.now();
    const submitted = await new Producer({ queue, queueUrl }).submitMany(inputs);
    if (submitted.failed.length > 0) throw new Error(`submit refused ${submitted.failed.length} jobs: ${submitted.failed[0]!.message}`);
    say(`submitted ${submitted.ids.length} jobs in ${Date.now() - started} ms`);

    const cache = stack.redisUrl === undefined ? undefined : new ResultsCache({ url: stack.redisUrl, ttlSeconds: 3600 });
    if (cache) cleanup.push(() => cache.close());
    const store = new JobStore(pool);
    const bar = new SingleBar({ format: "results |{bar}| {value}/{total} jobs | {duration}s", hideCursor: true }, Presets.shades_classic);
    bar.start(submitted.ids.length, 0);
    const records = await new ResultReader(store, cache).waitFor(submitted.ids, {
      signal: AbortSignal.timeout(10 * 60_000),
      onProgress: (done) => bar.update(done),
    });
    bar.stop();

    // --- stop workers (drain) and count from the store -------------------------------------------
    for (const w of workers) w.kill("SIGTERM");
    const exits = await Promise.all(workers.map((w) => w.exited));
    const rows = await store.getMany(submitted.ids);
    const succeeded = rows.filter((r) => r.status === "succeeded");
    const failed = rows.filter((r) => r.status !== "succeeded" && r.status !== "queued" && r.status !== "running");
    const { rows: dupRows } = await pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM jobs WHERE id = ANY($1::text[]) AND result_writes > 1",
      [submitted.ids],
    );
    // Ids are the primary key, so a duplicate can only show as a result written more than once.
    const duplicates = Number(dupRows[0]!.n);
    const latencies = succeeded.map((r) => r.finishedAt!.getTime() - r.createdAt.getTime());
    const lastFinish = Math.max(...succeeded.map((r) => r.finishedAt!.getTime()));
    const elapsedS = (lastFinish - started) / 1000;
    const tokens = succeeded.reduce((n, r) => n + (r.usage?.completionTokens ?? 0), 0);
    const providers: Record<string, number> = {};
    for (const r of succeeded) providers[r.provider ?? "unknown"] = (providers[r.provider ?? "unknown"] ?? 0) + 1;
    const costUsd = succeeded.reduce((n, r) => n + (r.costUsd ?? 0), 0);

    say("");
    say(`  ${submitted.ids.length} jobs through ${WORKERS} workers in ${round(elapsedS, 2)} s (${round(succeeded.length / elapsedS)} jobs/s, ${Math.round(tokens / elapsedS)} output tok/s)`);
    say(`  succeeded ${succeeded.length}, failed ${failed.length}, missing ${submitted.ids.length - records.size}, duplicates ${duplicates}`);
    say(`  providers: ${Object.entries(providers).map(([p, n]) => `${p} ${n}`).join(", ")}; cost $${costUsd.toFixed(6)}`);
    say(`  latency submit→result: p50 ${Math.round(percentile(latencies, 50))} ms, p95 ${Math.round(percentile(latencies, 95))} ms`);
    say(`  workers exited with ${exits.map((e) => e.code ?? e.signal).join(", ")} after SIGTERM`);
    say(`  look one up:  npx tsx producer/cli.ts get ${submitted.ids[0]}   (with DATABASE_URL set)`);
    say(
      JSON.stringify({
        submitted: submitted.ids.length,
        succeeded: succeeded.length,
        failed: failed.length,
        duplicates,
        jobs_per_s: round(succeeded.length / elapsedS, 1),
        p50_ms: Math.round(percentile(latencies, 50)),
        p95_ms: Math.round(percentile(latencies, 95)),
        providers,
        cost_usd: round(costUsd, 6),
        store: stack.storeKind,
        queue: stack.realSqs ? "sqs" : "emulator",
      }),
    );
    process.exitCode = succeeded.length === submitted.ids.length && duplicates === 0 ? 0 : 1;
  } finally {
    await runCleanup(cleanup, (err) => process.stderr.write(`cleanup: ${(err as Error).message}\n`));
  }
}

/** "<url>/health (ready)" — the worker's answer to a load balancer's probe. */
async function readiness(opsUrl: string | undefined): Promise<string> {
  if (opsUrl === undefined) return "no ops server";
  const status = await fetch(`${opsUrl}/health/ready`, { signal: AbortSignal.timeout(5_000) }).then(
    async (r) => {
      await r.text();
      return r.status;
    },
    () => undefined,
  );
  return `${opsUrl}/health (${status === undefined ? "no answer" : status === 200 ? "ready" : `not ready: ${status}`})`;
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
