/**
 * The simulator's own capacity: a closed loop of `concurrency` clients calling it directly (no queue, no store),
 * `jobs` requests in all. Returns completed jobs per second.
 */
import { VllmClient } from "../../shared/providers/vllm.ts";
import type { CompletionRequest } from "../../shared/providers/provider.ts";

export async function driveDirect(url: string, concurrency: number, jobs: number, request: (i: number) => CompletionRequest, model = "meta-llama/Llama-3.1-8B-Instruct"): Promise<number> {
  const client = new VllmClient({ baseUrl: url, model, timeoutMs: 600_000, connections: concurrency });
  let next = 0;
  const started = Date.now();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < jobs) await client.generate(request(next++));
      }),
    );
  } finally {
    await client.close();
  }
  return jobs / ((Date.now() - started) / 1000);
}
