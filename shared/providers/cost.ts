/**
 * Token estimates before a call (for rate limits and spend reservations) and the cost of a call after it.
 * The estimate is deliberately rough — about four characters a token for English text — and the reservation is
 * corrected with the real usage once the provider answers.
 */
import type { Price } from "./prices.ts";
import type { CompletionRequest } from "./provider.ts";

export interface TokenEstimate {
  prompt: number;
  completion: number;
}

/** Prompt tokens from characters ÷ 4; completion tokens from `max_tokens`, else `defaultMaxTokens`. */
export function estimateTokens(req: CompletionRequest, defaultMaxTokens: number): TokenEstimate {
  const chars = req.prompt?.length ?? (req.messages ?? []).reduce((sum, m) => sum + m.content.length, 0);
  return { prompt: Math.ceil(chars / 4), completion: req.params.max_tokens ?? defaultMaxTokens };
}

export function costUsd(price: Price, promptTokens: number, completionTokens: number): number {
  return (promptTokens * price.inputPerMTokUsd + completionTokens * price.outputPerMTokUsd) / 1_000_000;
}
