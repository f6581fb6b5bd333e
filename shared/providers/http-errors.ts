/**
 * Every way an HTTP provider call can fail, classified in one function into the fleet's taxonomy: retryable
 * (the job goes back to the queue) or terminal (the job is recorded failed). Callers decide on `retryable`/`code`.
 */
import { ProviderRetryableError, ProviderTerminalError, errorCodes, isTransientNetworkCode } from "../errors.ts";

export type ProviderError = ProviderRetryableError | ProviderTerminalError;

export type ProviderFailure =
  /** The server answered with a status we do not accept; `body` is (the start of) its text. */
  | { kind: "status"; statusCode: number; headers: Record<string, string | string[] | undefined>; body: string }
  /** No answer: refused, reset, DNS, undici socket/timeouts errors. */
  | { kind: "network"; error: unknown }
  /** A 2xx whose body is not what the API promises (bad JSON, no choices). */
  | { kind: "bad-response"; statusCode: number; detail: string; cause?: unknown };

export interface FailureContext {
  provider: string;
  /** What was being done, for the message: "chat", "completions", "models". */
  operation: string;
  /** Strings that must never appear in a message (API keys): replaced by "[redacted]". */
  secrets?: readonly string[];
  /** Clock for Retry-After dates; tests pass a fixed one. */
  now?: number;
}

/** How much of a provider's error message goes into ours: enough to read "prompt too long", not a whole page. */
export const MAX_DETAIL_CHARS = 300;

/** Statuses where the same request may succeed later. 429/503 mean "busy", the rest "broken for now". */
const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
const OVERLOADED_STATUS = new Set([429, 503]);

/** undici's own deadline errors: the server took too long, like our own timeout (any other transient code: connection). */
const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

export function toProviderError(failure: ProviderFailure, ctx: FailureContext): ProviderError {
  const what = `${ctx.provider} ${ctx.operation}`;
  const base = { provider: ctx.provider };
  switch (failure.kind) {
    case "status": {
      const { statusCode } = failure;
      const detail = redact(errorDetail(failure.body), ctx.secrets);
      const message = `${what}: HTTP ${statusCode}${detail ? `: ${detail}` : ""}`;
      const options = { ...base, statusCode };
      if (RETRYABLE_STATUS.has(statusCode)) {
        const retryAfterMs = parseRetryAfter(header(failure.headers, "retry-after"), ctx.now ?? Date.now());
        const code = OVERLOADED_STATUS.has(statusCode) ? "PROVIDER_OVERLOADED" : "PROVIDER_UNAVAILABLE";
        return new ProviderRetryableError(code, message, { ...options, retryAfterMs });
      }
      if (statusCode === 401 || statusCode === 403) return new ProviderTerminalError("PROVIDER_AUTH", message, options);
      if (statusCode === 404) return new ProviderTerminalError("PROVIDER_NOT_FOUND", message, options);
      // Any other 4xx (400, 413, 422, ...) says this request is wrong; repeating it cannot help.
      if (statusCode >= 400 && statusCode < 500) return new ProviderTerminalError("PROVIDER_BAD_REQUEST", message, options);
      // Other 5xx (501 aside) are server trouble like 500.
      if (statusCode >= 500 && statusCode !== 501) return new ProviderRetryableError("PROVIDER_UNAVAILABLE", message, options);
      // 1xx/3xx/501: the server does not speak the API we expect.
      return new ProviderTerminalError("PROVIDER_BAD_RESPONSE", message, options);
    }
    case "bad-response":
      // Terminal by choice: a 2xx with a broken body (bad JSON, no choices) comes from a server or proxy that does
      // not speak the API; asking the same one again would most likely get the same answer.
      return new ProviderTerminalError("PROVIDER_BAD_RESPONSE", `${what}: malformed response: ${redact(failure.detail, ctx.secrets)}`, {
        ...base,
        statusCode: failure.statusCode,
        cause: failure.cause,
      });
    case "network": {
      const codes = errorCodes(failure.error);
      const known = codes.find((c) => isTransientNetworkCode(c) || c.startsWith("HPE_"));
      const options = { ...base, cause: failure.error };
      if (known !== undefined && TIMEOUT_CODES.has(known)) {
        return new ProviderRetryableError("PROVIDER_TIMEOUT", `${what}: no answer in time (${known})`, options);
      }
      if (known !== undefined && isTransientNetworkCode(known)) {
        return new ProviderRetryableError("PROVIDER_CONNECTION", `${what}: connection failed (${known})`, options);
      }
      if (known !== undefined) {
        return new ProviderTerminalError("PROVIDER_BAD_RESPONSE", `${what}: unparsable HTTP response (${known})`, options);
      }
      if (codes.includes("UND_ERR_INVALID_ARG")) {
        return new ProviderTerminalError("PROVIDER_BAD_REQUEST", `${what}: request rejected by the HTTP client`, options);
      }
      // Unknown transport trouble: retry, bounded by the queue's maxReceiveCount.
      return new ProviderRetryableError("PROVIDER_UNAVAILABLE", `${what}: ${codes[0] ?? "transport error"}`, options);
    }
  }
}

/** Retry-After as ms: delta-seconds ("120", "1.5") or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The human part of an error body: OpenAI/vLLM `{error:{message}}`, older vLLM `{message}`, FastAPI
 * validation `{detail:[{msg}]}`, else the raw text. Truncated to MAX_DETAIL_CHARS.
 */
export function errorDetail(body: string): string {
  let detail = body.trim();
  try {
    const parsed: unknown = JSON.parse(detail);
    detail = messageOf(parsed) ?? detail;
  } catch {
    // not JSON: keep the text
  }
  detail = detail.replace(/\s+/g, " ");
  return detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS)}…` : detail;
}

function messageOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const parts = value.map(messageOf).filter((m): m is string => m !== undefined);
    return parts.length > 0 ? parts.join("; ") : undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const o = value as Record<string, unknown>;
  return messageOf(o.message) ?? messageOf(o.error) ?? messageOf(o.detail) ?? messageOf(o.msg);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function redact(text: string, secrets: readonly string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s.length > 0) out = out.split(s).join("[redacted]");
  return out;
}
