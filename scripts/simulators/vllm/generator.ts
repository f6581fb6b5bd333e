/**
 * Deterministic output: the same seed + prompt (+ request seed, + choice index) always gives the same length,
 * finish_reason and text. One output token = one word of a fixed pseudo-random corpus built from the seed at start,
 * so producing a response is one string slice, not a per-token allocation.
 */
export type FinishReason = "stop" | "length";

export interface OutputPlan {
  outputTokens: number;
  finishReason: FinishReason;
  /** Word offset into the corpus where the text starts. */
  textStart: number;
  /** The text carries a U+0000 after its first word, as a model decoding the byte token <0x00> would. */
  nul?: boolean;
  /** A stop string ended it: the text is cut where the stop string starts (vLLM leaves it out), and this is it. */
  stopReason?: string;
  /** Characters of the text kept (before a stop string); the whole text when absent. */
  textLength?: number;
}

export interface OutputLimits {
  /** The request's max_tokens, if it set one. */
  maxTokens: number | undefined;
  /** max_model_len - prompt tokens: vLLM's default max_tokens. */
  contextRoom: number;
  minTokens: number;
  /** vLLM's ignore_eos: always generate max_tokens. */
  ignoreEos: boolean;
  /** The request's `stop` strings: generation ends at the first one the text would contain (after min_tokens). */
  stop?: readonly string[];
}

const VOCABULARY = (
  "the of and to in is that for it as with was on be by this are at from or an have not which but they you one all " +
  "model token batch queue worker request latency throughput memory cache scale fleet signal value result system " +
  "data time first last each other more most some such only also very well just then than into over after before " +
  "under between through during without within across simple clear quick steady large small early late high low " +
  "make take give find keep hold show move turn start stop run send read write wait serve count measure answer"
).split(" ");

const CORPUS_WORDS = 4096;

export class OutputGenerator {
  private readonly corpus: string;
  /** offsets[i] = index in `corpus` of word i's leading space; offsets[CORPUS_WORDS] = corpus.length. */
  private readonly offsets = new Int32Array(CORPUS_WORDS + 1);

  constructor(
    private readonly seed: number,
    private readonly earlyStopRate: number,
    private readonly meanOutputTokens: number,
  ) {
    const random = mulberry32(seed ^ 0x5eed);
    const parts: string[] = [];
    let length = 0;
    for (let i = 0; i < CORPUS_WORDS; i++) {
      this.offsets[i] = length;
      const word = " " + VOCABULARY[Math.floor(random() * VOCABULARY.length)];
      parts.push(word);
      length += word.length;
    }
    this.offsets[CORPUS_WORDS] = length;
    this.corpus = parts.join("");
  }

  /** Decide length and finish reason for one choice. `key` is the prompt text (or a digest of token ids). */
  plan(key: string, salt: number, limits: OutputLimits): OutputPlan {
    const plan = this.planLength(key, salt, limits);
    return limits.stop !== undefined && limits.stop.length > 0 ? this.applyStop(plan, limits.stop, limits.minTokens) : plan;
  }

  /**
   * Cut the plan at the earliest stop string its text contains, as vLLM's detokenizer does: the output ends with the
   * token that completes the stop string (counted), the text ends before it. Matches ending within the first
   * `minTokens` tokens do not count (vLLM ignores stop strings until min_tokens).
   */
  private applyStop(plan: OutputPlan, stops: readonly string[], minTokens: number): OutputPlan {
    const text = this.text(plan);
    let best: { start: number; end: number; stop: string } | undefined;
    for (const stop of stops) {
      if (stop.length === 0) continue;
      for (let from = 0; ; ) {
        const start = text.indexOf(stop, from);
        if (start < 0 || (best !== undefined && start >= best.start)) break;
        const end = start + stop.length;
        if (tokenIndexAt(text, end - 1) + 1 >= minTokens) {
          best = { start, end, stop };
          break;
        }
        from = start + 1;
      }
    }
    if (best === undefined) return plan;
    return { ...plan, outputTokens: tokenIndexAt(text, best.end - 1) + 1, finishReason: "stop", stopReason: best.stop, textLength: best.start };
  }

  private planLength(key: string, salt: number, limits: OutputLimits): OutputPlan {
    const random = mulberry32(hashString(key, this.seed) ^ Math.imul(salt + 1, 0x9e3779b9));
    const limit = Math.max(1, limits.maxTokens ?? limits.contextRoom);
    const floor = Math.min(limit, Math.max(1, limits.minTokens));
    const textStart = Math.floor(random() * CORPUS_WORDS);
    const pick = random();
    const draw = random();
    if (limits.ignoreEos) return { outputTokens: limit, finishReason: "length", textStart };
    if (limits.maxTokens !== undefined) {
      if (pick < this.earlyStopRate && limit > floor) {
        return { outputTokens: floor + Math.floor(draw * (limit - floor)), finishReason: "stop", textStart };
      }
      return { outputTokens: limit, finishReason: "length", textStart };
    }
    const natural = Math.max(floor, 1 + Math.floor(draw * 2 * this.meanOutputTokens));
    return natural >= limit ? { outputTokens: limit, finishReason: "length", textStart } : { outputTokens: natural, finishReason: "stop", textStart };
  }

  /** The plan's text: `outputTokens` words, without the leading space. */
  text(plan: OutputPlan): string {
    let remaining = plan.outputTokens;
    let start = plan.textStart;
    let out = "";
    while (remaining > 0) {
      const take = Math.min(remaining, CORPUS_WORDS - start);
      out += this.corpus.slice(this.offsets[start], this.offsets[start + take]);
      remaining -= take;
      start = 0;
    }
    const text = out.slice(1, plan.textLength === undefined ? undefined : plan.textLength + 1);
    return plan.nul ? withNul(text) : text;
  }
}

/** The output token that character `pos` of a generated text belongs to: words are tokens, a space leads its word. */
function tokenIndexAt(text: string, pos: number): number {
  let spaces = 0;
  for (let i = 0; i <= pos; i++) if (text.charCodeAt(i) === 32) spaces++;
  return spaces;
}

function withNul(text: string): string {
  const space = text.indexOf(" ");
  return space < 0 ? `${text}\u0000` : `${text.slice(0, space)}\u0000${text.slice(space)}`;
}

/** FNV-1a over UTF-16 code units, seeded. */
export function hashString(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Small fast seeded PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
