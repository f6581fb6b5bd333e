/** Jobs per provider that answered them, from the job records' `provider` column (unset on rows nobody answered). */
export type ProviderCounts = Record<"vllm" | "ollama" | "gemini", number> & Record<string, number>;

export function providerCounts(rows: Iterable<{ provider?: string | null }>): ProviderCounts {
  const counts: ProviderCounts = { vllm: 0, ollama: 0, gemini: 0 };
  for (const { provider } of rows) if (provider) counts[provider] = (counts[provider] ?? 0) + 1;
  return counts;
}
