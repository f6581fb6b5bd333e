/**
 * Logs to stderr (fd 2): pino JSON in production, pino-pretty when stderr is a terminal (LOG_FORMAT=auto), or as
 * LOG_FORMAT says. What no line may carry is kept out here, for every caller:
 * - secrets by key: pino's `redact` censors the known secret-bearing keys (headers, API keys, passwords, connection
 *   URLs) at the top level; the scrub below censors the same keys, and any key named like `*_API_KEY`/`*Secret`, at
 *   any depth. Not pino's wildcard paths: they cost ~0.2 µs per path on every line (93 paths: 21 µs a line, a
 *   child logger 36 µs), where the scrub's key check costs a fraction of a µs;
 * - credentials inside text: every string of every line loses the `user:password@` of any URL in it (userinfo.ts),
 *   the message and error messages and stacks included;
 * - personal data inside free text (pii.ts): the message, errors, and values under the free-text keys (`reason`,
 *   `detail`, `prompt`, `answer`, ...) are masked. Other fields (ids, codes, counts) are not scanned: the filter's
 *   cost is paid only for text we chose to log.
 */
import { pino, stdSerializers, type Bindings, type DestinationStream, type Logger } from "pino";
import { prettyFactory } from "pino-pretty";
import { maskPii } from "./pii.ts";
import { stripUserInfo } from "./userinfo.ts";

export type { Logger };
export type LogFormat = "auto" | "json" | "pretty";

export interface LoggerOptions {
  /** auto (default): pretty when `isTty`, else JSON. */
  format?: LogFormat;
  /** Where lines go. Default: fd 2, written synchronously (nothing is lost at process.exit). */
  destination?: DestinationStream;
  /** Whether the destination is a terminal. Default: process.stderr.isTTY. */
  isTty?: boolean;
}

const CENSOR = "[redacted]";
/** Keys whose value is a secret wherever they appear (exact names; headers in the forms Node and undici use). */
const SECRET_KEYS = [
  "authorization", "Authorization", "proxy-authorization", "x-api-key", "X-Api-Key", "x-goog-api-key", "X-Goog-Api-Key", "cookie", "set-cookie",
  "apiKey", "api_key", "apikey", "password", "secret", "token", "accessToken", "refreshToken", "secretAccessKey", "sessionToken",
  "databaseUrl", "redisUrl", "connectionString", "DATABASE_URL", "DATABASE_PASSWORD", "REDIS_URL", "VLLM_API_KEY", "GEMINI_API_KEY",
  "DATADOG_API_KEY", "DATADOG_APP_KEY", "DD_API_KEY", "DD_APP_KEY",
];
/** Keys named like a secret at any depth (DATADOG_API_KEY-style, xApiKey, clientSecret, headers): censored by the scrub. */
const SECRET_KEY_PATTERN = /(?:^|[_-])(?:api[_-]?key|app[_-]?key|secret|password|passwd|token)$|(?:ApiKey|Secret|Password|Token)$|^(?:proxy-)?authorization$|^(?:set-)?cookie$/i;
/** Values under these keys are free text that may hold personal data: masked by pii.ts. */
const FREE_TEXT_KEYS = new Set(["reason", "detail", "details", "message", "text", "body", "prompt", "messages", "answer", "output", "input"]);
/** Deeper than this a logged value is left as it is (no line of ours nests so far; a cycle stops here). */
const MAX_DEPTH = 8;

/** pino's paths for the known keys at the top level (bracketed where a key is no identifier, like `x-api-key`). */
export const REDACT_PATHS = SECRET_KEYS.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`));
const SECRET_KEY_SET = new Set(SECRET_KEYS);

export function createLogger(level: string, name: string, o: LoggerOptions = {}): Logger {
  const tty = o.isTty ?? process.stderr.isTTY === true;
  const pretty = o.format === "pretty" || (o.format !== "json" && tty);
  const base = o.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      name,
      level,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      serializers: { err: serializeError, msg: (m: unknown) => (typeof m === "string" ? cleanFreeText(m) : m) },
      formatters: { log: (obj) => scrub(obj, false, 0) as Record<string, unknown>, bindings: (b) => scrub(b, false, 0) as Bindings },
    },
    pretty ? prettyDestination(base, tty) : base,
  );
}

/** Lines turned into pino-pretty's layout in-process, synchronously: no worker thread, nothing lost at exit. */
function prettyDestination(out: DestinationStream, colorize: boolean): DestinationStream {
  const prettify = prettyFactory({ colorize, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" });
  return { write: (line: string) => out.write(prettify(line)) };
}

function cleanFreeText(s: string): string {
  return maskPii(stripUserInfo(s));
}

/** Errors already serialized and cleaned (scrub meets them first; pino's `err` serializer then passes them on). */
const cleaned = new WeakSet<object>();

/** pino's error serializer (message and stack with their causes), then every string in it cleaned as free text. */
function serializeError(err: unknown): unknown {
  if (typeof err === "object" && err !== null && cleaned.has(err)) return err;
  const out = stdSerializers.err(err as Error);
  if (out === err) return scrub(err, true, 0);
  const plain: Record<string, unknown> = {};
  for (const key of Object.keys(out)) plain[key] = (out as unknown as Record<string, unknown>)[key];
  const clean = scrub(plain, true, 0) as object;
  cleaned.add(clean);
  return clean;
}

/**
 * A copy of `value` with credentials cut from every string, secret-named keys censored, and, when `free`, personal
 * data masked; unchanged parts are shared, and `value` itself is never modified.
 */
function scrub(value: unknown, free: boolean, depth: number): unknown {
  if (typeof value === "string") return free ? cleanFreeText(value) : stripUserInfo(value);
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
  if (value instanceof Error) return serializeError(value);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((v, i) => {
      const s = scrub(v, free, depth + 1);
      if (s !== v) (copy ??= [...value])[i] = s;
    });
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value; // Date, Buffer, Map, class instances: as pino prints them
  let copy: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const secret = (SECRET_KEY_SET.has(k) || SECRET_KEY_PATTERN.test(k)) && v !== undefined && v !== null;
    const s = secret ? CENSOR : scrub(v, free || FREE_TEXT_KEYS.has(k), depth + 1);
    if (s !== v) (copy ??= { ...(value as Record<string, unknown>) })[k] = s;
  }
  return copy ?? value;
}
