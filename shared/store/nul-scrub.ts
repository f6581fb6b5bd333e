/**
 * What Postgres refuses, removed at the store's boundary: U+0000 in `text` (22021) and `jsonb` (22P05), and in
 * `jsonb` also a lone UTF-16 surrogate (its `\udXXX` escape, 22P02). Models can emit U+0000 (byte-fallback tokens
 * like `<0x00>`), and one such value would fail the whole multi-row statement it rides in. Each is replaced by
 * U+FFFD, the character Unicode reserves for "something was here that could not be kept".
 */
const NUL = /\u0000/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** JSON.stringify writes U+0000 and lone surrogates as escapes; well-formed text never contains these. */
const SUSPECT_JSON = /\\u0000|\\ud[89a-f]/i;

/** `text` with each U+0000 replaced, and how many were. */
export function replaceNul(text: string): { text: string; replaced: number } {
  if (!text.includes("\u0000")) return { text, replaced: 0 };
  let replaced = 0;
  return { text: text.replace(NUL, () => (replaced++, "\uFFFD")), replaced };
}

/** `text` safe for a Postgres text column (NUL replaced, silently). */
export function safeText(text: string): string;
export function safeText(text: string | null): string | null;
export function safeText(text: string | null): string | null {
  return text === null ? null : replaceNul(text).text;
}

/** JSON text of `value` that jsonb accepts: every string (keys too) scrubbed. Fast path when nothing needs it. */
export function jsonForStore(value: unknown): string {
  const text = JSON.stringify(value);
  return SUSPECT_JSON.test(text) ? JSON.stringify(scrubValue(JSON.parse(text))) : text;
}

/**
 * JSON text that jsonb accepts, from JSON text a caller holds (a job's, or a poison body's). Text that does not
 * parse is kept as a JSON string, so a poison record still shows what arrived.
 */
export function jsonTextForStore(text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return JSON.stringify(scrubString(text));
  }
  return jsonForStore(value);
}

function scrubString(s: string): string {
  return s.replace(NUL, "\uFFFD").replace(LONE_SURROGATE, "\uFFFD");
}

function scrubValue(v: unknown): unknown {
  if (typeof v === "string") return scrubString(v);
  if (Array.isArray(v)) return v.map(scrubValue);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [scrubString(k), scrubValue(x)]));
  }
  return v;
}
