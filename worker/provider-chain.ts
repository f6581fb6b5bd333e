/**
 * The provider chain from config: vLLM (always; its URL has a default), Ollama when OLLAMA_URL is set, Gemini when
 * GEMINI_API_KEY is set, in PROVIDER_CHAIN's order. vLLM's limit is the worker's concurrency (its batch); Ollama and
 * Gemini get their own small limits, so a vLLM outage never floods a single Ollama box or a paid quota.
 */
import type { Config, ProviderName } from "../shared/config.ts";
import { GeminiClient } from "../shared/providers/gemini.ts";
import { OllamaClient } from "../shared/providers/ollama.ts";
import type { ProviderRouterOptions, RouteOptions } from "../shared/providers/router.ts";
import { RedisSpendLedger } from "../shared/providers/redis-spend-ledger.ts";
import type { SecretValue } from "../shared/secrets.ts";
import { VllmClient } from "../shared/providers/vllm.ts";

export interface ProviderChain {
  vllm: VllmClient;
  routes: RouteOptions[];
  router: Omit<ProviderRouterOptions, "routes" | "onAllOpen" | "log">;
  close(): Promise<void>;
}

/**
 * `keys`: the provider keys' holders from the SecretResolver (config may hold Secrets Manager ARNs in their place).
 * The clients read them per request and refresh them after an auth failure, so a rotation needs no restart.
 */
export function buildProviderChain(config: Config, concurrency: number, keys: { vllm?: SecretValue; gemini?: SecretValue }): ProviderChain {
  const p = config.providers;
  // One connection per job in flight: vLLM answers pipelined requests one at a time, so fewer would cap its batch.
  const vllm = new VllmClient({ baseUrl: config.vllm.url, model: config.vllm.model, apiKey: keys.vllm, timeoutMs: config.vllm.timeoutMs, connections: concurrency });
  const routeFor: Record<ProviderName, () => RouteOptions | undefined> = {
    vllm: () => ({ provider: vllm, model: config.vllm.model, maxInFlight: concurrency }),
    ollama: () =>
      p.ollama && {
        provider: new OllamaClient({ baseUrl: p.ollama.url, model: p.ollama.model, modelMap: p.ollama.modelMap, keepAlive: p.ollama.keepAlive, timeoutMs: config.vllm.timeoutMs }),
        model: p.ollama.model,
        maxInFlight: p.ollama.maxInFlight,
        queueWaitMs: p.ollama.queueWaitMs,
      },
    gemini: () =>
      p.gemini && {
        provider: new GeminiClient({ baseUrl: p.gemini.url, apiKey: keys.gemini ?? p.gemini.apiKey, model: p.gemini.model, timeoutMs: config.vllm.timeoutMs }),
        model: p.gemini.model,
        maxInFlight: p.gemini.maxInFlight,
        queueWaitMs: p.gemini.queueWaitMs,
        requestsPerMinute: p.gemini.requestsPerMinute,
        tokensPerMinute: p.gemini.tokensPerMinute,
        spendCeilingUsdPerHour: p.gemini.spendCeilingUsdPerHour,
      },
  };
  const routes = p.chain.flatMap((name) => routeFor[name]() ?? []);
  const spendLedger = config.store.redisUrl === undefined ? undefined : new RedisSpendLedger({ url: config.store.redisUrl });
  return {
    vllm,
    routes,
    router: {
      failureThreshold: p.breakerThreshold,
      coolDownMs: p.breakerCoolDownMs,
      budgetMs: p.budgetMs,
      retryAfterCapMs: p.retryAfterCapMs,
      accurateRoute: p.accurate,
      spendLedger,
    },
    close: async () => {
      await Promise.allSettled([...routes.map((r) => r.provider.close()), spendLedger?.close()]);
    },
  };
}
