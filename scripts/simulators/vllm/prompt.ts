/**
 * A prompt as vLLM sees it, without a tokenizer: its token count after Llama 3.1's chat template (or the BOS a
 * completion prompt gets) and the chained hashes of its full KV blocks, which prefix caching keys on. Text is
 * ≈ 4 characters a token (tokens.ts); template tokens are counted as Llama-3.1-Instruct's template emits them:
 *   <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n
 *   Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n{system message}<|eot_id|>      26 + system text
 *   <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>                               5 + content, per message
 *   <|start_header_id|>assistant<|end_header_id|>\n\n                                                4 (generation prompt)
 * The system block is always there (the template writes the date lines even without a system message), so every chat
 * prompt shares its first KV block with every other: a prefix-cache hit for the template alone.
 */
import { BLOCK_SIZE } from "./prefix-cache.ts";
import { CHARS_PER_TOKEN } from "./tokens.ts";

/** BOS + system header + the knowledge/today date lines + <|eot_id|>. */
export const LLAMA31_SYSTEM_BLOCK_TOKENS = 26;
/** <|start_header_id|>role<|end_header_id|>\n\n … <|eot_id|> around each message after the system one. */
export const LLAMA31_TOKENS_PER_MESSAGE = 5;
/** <|start_header_id|>assistant<|end_header_id|>\n\n. */
export const LLAMA31_GENERATION_PROMPT_TOKENS = 4;

export interface PromptTokens {
  tokens: number;
  /** Chained hash of each full BLOCK_SIZE-token block, first block first. */
  blockHashes: number[];
}

export interface ChatMessageText {
  role: string;
  text: string;
}

/** Tokens and block hashes of a chat request after Llama 3.1's template. */
export function chatPrompt(messages: readonly ChatMessageText[]): PromptTokens {
  const s = new TokenStream();
  s.special("bos");
  s.special("system-header", 4);
  s.special("date-lines", LLAMA31_SYSTEM_BLOCK_TOKENS - 6);
  const rest = messages[0]?.role === "system" ? messages.slice(1) : messages;
  if (rest !== messages) s.text(messages[0]!.text.trim());
  s.special("eot");
  for (const m of rest) {
    s.special(`header:${m.role}`, LLAMA31_TOKENS_PER_MESSAGE - 1);
    s.text(m.text.trim());
    s.special("eot");
  }
  s.special("generation-prompt", LLAMA31_GENERATION_PROMPT_TOKENS);
  return s.result();
}

/** A completion prompt given as text: BOS + the text (vLLM adds special tokens to text prompts). */
export function textPrompt(text: string): PromptTokens {
  const s = new TokenStream();
  s.special("bos");
  s.text(text, true);
  return s.result();
}

/** A completion prompt given as token ids: exactly those tokens. */
export function tokenIdsPrompt(ids: readonly number[]): PromptTokens {
  const s = new TokenStream();
  for (const id of ids) s.token(`#${id}`);
  return s.result();
}

/** Accumulates tokens, hashing each block with FNV-1a chained from the previous block. */
class TokenStream {
  private count = 0;
  private hash = 0x811c9dc5;
  private readonly blocks: number[] = [];

  token(piece: string): void {
    let h = this.hash;
    for (let i = 0; i < piece.length; i++) h = Math.imul(h ^ piece.charCodeAt(i), 0x01000193);
    this.hash = Math.imul(h ^ 0x1f, 0x01000193); // token separator
    if (++this.count % BLOCK_SIZE === 0) this.blocks.push(this.hash >>> 0);
  }

  special(name: string, tokens = 1): void {
    for (let i = 0; i < tokens; i++) this.token(`<${name}:${i}>`);
  }

  /** ≈ CHARS_PER_TOKEN characters a token; empty text is no token unless `atLeastOne` (a completion prompt). */
  text(text: string, atLeastOne = false): void {
    if (text.length === 0) {
      if (atLeastOne) this.token("");
      return;
    }
    for (let i = 0; i < text.length; i += CHARS_PER_TOKEN) this.token(text.slice(i, i + CHARS_PER_TOKEN));
  }

  result(): PromptTokens {
    return { tokens: this.count, blockHashes: this.blocks };
  }
}
