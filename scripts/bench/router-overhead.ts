/**
 * The provider router's own CPU cost per job, in-process: `n` calls through a one-route ProviderRouter in front of an
 * instant fake vs the same `n` calls to the fake directly, the difference per call. Rounds alternate (direct, router)
 * after a warm-up so JIT and GC weigh on both alike; the median round's difference is reported, because other
 * processes share this machine's cores and one slow round says nothing about the router.
 */
import type { Completion, CompletionRequest, Provider } from "../../shared/providers/provider.ts";
import { ProviderRouter } from "../../shared/providers/router.ts";

/** Answers at once, as the instant simulator profile does, without any I/O. Named "vllm" so it is priced as self-hosted. */
class InstantFake implements Provider {
  readonly name = "vllm";
  generate(req: CompletionRequest): Promise<Completion> {
    return Promise.resolve({ text: "ok", finishReason: "stop", promptTokens: 12, completionTokens: req.params.max_tokens ?? 16, model: "instant", provider: this.name });
  }
  async close(): Promise<void> {}
}

export interface RouterOverhead {
  /** The router's own cost, µs per job (router call minus direct call). */
  routerUsPerJob: number;
  /** A direct call to the fake, µs per job: the floor the router adds to. */
  directUsPerJob: number;
  n: number;
}

async function timeCalls(p: Provider, n: number, request: (i: number) => CompletionRequest): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await p.generate(request(i));
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

export async function measureRouterOverhead(n: number, request: (i: number) => CompletionRequest, rounds = 5): Promise<RouterOverhead> {
  const fake = new InstantFake();
  const router = new ProviderRouter({ routes: [{ provider: fake, maxInFlight: 1024 }] });
  const warm = Math.min(n, 20_000);
  await timeCalls(fake, warm, request);
  await timeCalls(router, warm, request);
  const samples: { direct: number; routed: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const direct = await timeCalls(fake, n, request);
    samples.push({ direct, routed: await timeCalls(router, n, request) });
  }
  samples.sort((x, y) => x.routed - x.direct - (y.routed - y.direct));
  const mid = samples[Math.floor(samples.length / 2)]!;
  return { routerUsPerJob: mid.routed - mid.direct, directUsPerJob: mid.direct, n };
}
