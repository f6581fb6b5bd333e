/**
 * Prompt-token estimates without a tokenizer. Rule: ceil(characters / 4), at least 1 — the usual ≈ 4 characters per
 * token of English under Llama-3's tokenizer. Chat adds the Llama-3 template's framing: 4 tokens per message
 * (<|start_header_id|>role<|end_header_id|>\n\n … <|eot_id|>) plus 5 for <|begin_of_text|> and the assistant header.
 * Prompts sent as token ids are counted exactly.
 */
export const CHARS_PER_TOKEN = 4;
export const CHAT_TOKENS_PER_MESSAGE = 4;
export const CHAT_TOKENS_PER_CONVERSATION = 5;

export function estimateTextTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / CHARS_PER_TOKEN));
}

export function estimateChatTokens(messageTexts: readonly string[]): number {
  let total = CHAT_TOKENS_PER_CONVERSATION;
  for (const text of messageTexts) total += CHAT_TOKENS_PER_MESSAGE + (text.length === 0 ? 0 : estimateTextTokens(text));
  return total;
}
