/**
 * What a provider's tokens cost, USD per 1M tokens, by provider name then model. Self-hosted backends (vLLM,
 * Ollama) cost 0 here: their cost is the instance, paid whether it serves or not. The table is a router option
 * (`prices`), so a price change or a negotiated rate is configuration, not code.
 */
export interface Price {
  inputPerMTokUsd: number;
  outputPerMTokUsd: number;
}

/** provider → model (or "*" for any other model of that provider) → price. */
export type PriceTable = Readonly<Record<string, Readonly<Record<string, Price>>>>;

const FREE: Price = { inputPerMTokUsd: 0, outputPerMTokUsd: 0 };

/**
 * Gemini Developer API, paid tier, text prompts of ≤ 200k tokens, as listed on
 * https://ai.google.dev/gemini-api/docs/pricing (input prices as transcribed from that page on 2026-10-07; output
 * prices as published since the 2.5 models' GA in June 2025). Check the page before relying on these for billing.
 * A Gemini model not listed is priced as 2.5 Pro, the dearest here, so an unknown model trips its ceiling early
 * rather than late.
 */
const GEMINI_2_5_PRO: Price = { inputPerMTokUsd: 1.25, outputPerMTokUsd: 10 };
export const DEFAULT_PRICES: PriceTable = {
  vllm: { "*": FREE },
  ollama: { "*": FREE },
  gemini: {
    "gemini-2.5-pro": GEMINI_2_5_PRO,
    "gemini-2.5-flash": { inputPerMTokUsd: 0.3, outputPerMTokUsd: 2.5 },
    "gemini-2.5-flash-lite": { inputPerMTokUsd: 0.1, outputPerMTokUsd: 0.4 },
    "*": GEMINI_2_5_PRO,
  },
};

/**
 * The price of `model` at `provider`: the exact model, else the longest listed name it starts with (a dated
 * version "gemini-2.5-flash-001" is priced as "gemini-2.5-flash"), else the provider's "*", else free.
 */
export function priceOf(table: PriceTable, provider: string, model: string | undefined): Price {
  const models = table[provider];
  if (models === undefined) return FREE;
  const name = (model ?? "").replace(/^models\//, "");
  const exact = models[name];
  if (exact !== undefined) return exact;
  const prefix = Object.keys(models)
    .filter((m) => m !== "*" && name.startsWith(m))
    .sort((a, b) => b.length - a.length)[0];
  return (prefix === undefined ? undefined : models[prefix]) ?? models["*"] ?? FREE;
}

export function isFree(price: Price): boolean {
  return price.inputPerMTokUsd === 0 && price.outputPerMTokUsd === 0;
}
