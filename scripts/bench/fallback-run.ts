/**
 * The fallback chain alone: vLLM unreachable (its URL a closed port), an Ollama and a Gemini stand-in (the simulator's
 * native /api/* and generateContent APIs, each its own process and engine, as demo.ts's fallbacks). Ollama takes
 * OLLAMA_MAX_IN_FLIGHT (4) calls per worker, Gemini GEMINI_MAX_IN_FLIGHT (16); a job over both waits within
 * ROUTER_BUDGET_MS, so throughput here is bounded by those limits, not by the stand-ins.
 */
import type pg from "pg";
import { delay } from "../../shared/backoff.ts";
import { freePort, startSimProcess } from "./processes.ts";

export interface FallbackResult {
  jobsPerS: number;
  jobs: number;
  succeeded: number;
  /** Answered jobs per provider, e.g. { ollama: 180, gemini: 320 }. */
  providers: Record<string, number>;
  costUsd: number;
}

export interface FallbackStandIns {
  /** Worker env: VLLM_URL at a closed port, OLLAMA_URL, GEMINI_URL, GEMINI_API_KEY. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startFallbackStandIns(simFlags: string[]): Promise<FallbackStandIns> {
  const key = `bench-${Math.random().toString(36).slice(2)}`;
  const ollama = await startSimProcess([...simFlags, "--seed", "11"]);
  const gemini = await startSimProcess([...simFlags, "--seed", "13", "--gemini-api-key", key]);
  // Nothing listens there once freePort has closed its probe server: every vLLM call is refused at once.
  const closed = `http://127.0.0.1:${await freePort()}`;
  return {
    env: { VLLM_URL: closed, OLLAMA_URL: ollama.url, GEMINI_URL: gemini.url, GEMINI_API_KEY: key },
    stop: async () => void (await Promise.all([ollama.stop(), gemini.stop()])),
  };
}

/** Resolves once every job has reached a final status (or `timeoutMs` passed); returns how many succeeded. */
export async function waitFinal(pool: pg.Pool, jobs: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ done: number; ok: number }>(
      "SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'dead', 'expired'))::int AS done, count(*) FILTER (WHERE status = 'succeeded')::int AS ok FROM jobs",
    );
    const { done, ok } = rows[0]!;
    if (done >= jobs || Date.now() > until) return ok;
    await delay(100);
  }
}

/** Who answered and what it cost, from the jobs table (records carry `provider` and `cost_usd`). */
export async function providerSplit(pool: pg.Pool): Promise<{ providers: Record<string, number>; costUsd: number }> {
  const { rows } = await pool.query<{ provider: string | null; n: number; usd: string | null }>(
    "SELECT provider, count(*)::int AS n, sum(cost_usd)::text AS usd FROM jobs WHERE status = 'succeeded' GROUP BY provider ORDER BY provider",
  );
  return {
    providers: Object.fromEntries(rows.map((r) => [r.provider ?? "unknown", r.n])),
    costUsd: rows.reduce((sum, r) => sum + Number(r.usd ?? 0), 0),
  };
}
