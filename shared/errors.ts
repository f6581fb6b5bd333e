/**
 * The error taxonomy. Every error the fleet raises on purpose is a FleetError with a stable `code` and a
 * `retryable` flag: callers decide retry vs. terminal on the property, never by matching message text.
 */
export interface FleetErrorOptions {
  cause?: unknown;
  statusCode?: number;
  provider?: string;
  messageId?: string;
  /** Server-suggested delay before a retry (Retry-After, Gemini RetryInfo), in ms. */
  retryAfterMs?: number;
}

export abstract class FleetError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  readonly statusCode?: number;
  readonly provider?: string;
  readonly messageId?: string;
  readonly retryAfterMs?: number;

  constructor(message: string, options: FleetErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.statusCode = options.statusCode;
    this.provider = options.provider;
    this.messageId = options.messageId;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Configuration is invalid; the process cannot start. Lists every bad variable. */
export class ConfigError extends FleetError {
  readonly code = "CONFIG_INVALID";
  readonly retryable = false;
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  - ${issues.join("\n  - ")}`);
  }
}

/** A job does not satisfy the message contract (bad JSON, schema, unknown version, too large). Never retried. */
export class ContractError extends FleetError {
  readonly retryable = false;
  constructor(
    readonly code: "JOB_NOT_JSON" | "JOB_INVALID" | "JOB_UNKNOWN_VERSION" | "JOB_TOO_LARGE",
    message: string,
    /** The request id, when one could be recovered from the body. */
    readonly jobId?: string,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** A provider failed in a way worth retrying (5xx, 429, timeout, connection refused). */
export class ProviderRetryableError extends FleetError {
  readonly retryable = true;
  constructor(
    readonly code: "PROVIDER_UNAVAILABLE" | "PROVIDER_OVERLOADED" | "PROVIDER_TIMEOUT" | "PROVIDER_CONNECTION" | "PROVIDER_CIRCUIT_OPEN",
    message: string,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** A provider refused the request for good (400 context too long, 404 unknown model, 401/403). */
export class ProviderTerminalError extends FleetError {
  readonly retryable = false;
  constructor(
    readonly code:
      | "PROVIDER_BAD_REQUEST"
      | "PROVIDER_AUTH"
      | "PROVIDER_NOT_FOUND"
      | "PROVIDER_BAD_RESPONSE"
      | "PROVIDER_QUOTA_EXHAUSTED"
      | "PROVIDER_SAFETY_BLOCK"
      | "PROVIDER_RECITATION"
      | "PROVIDER_BLOCKLIST"
      | "PROVIDER_PROHIBITED_CONTENT"
      | "PROVIDER_SPII"
      | "PROVIDER_PROMPT_BLOCKED",
    message: string,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** The queue (SQS or its emulator) failed; retryable unless the code says the request itself is wrong. */
export class QueueError extends FleetError {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** The store (Postgres) is unreachable or failed; writes are retried with backoff. */
export class StoreError extends FleetError {
  constructor(
    readonly code: "STORE_UNAVAILABLE" | "STORE_CONFLICT" | "STORE_QUERY_FAILED",
    message: string,
    readonly retryable: boolean,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** A job's deadline had passed before a provider was called. */
export class JobExpiredError extends FleetError {
  readonly code = "JOB_EXPIRED";
  readonly retryable = false;
}

/** Coerce anything thrown into an Error, keeping the original as `cause` (graphile's coerceError). */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  const err = new Error(typeof thrown === "string" ? thrown : `non-error thrown: ${safeString(thrown)}`);
  (err as Error & { cause?: unknown }).cause = thrown;
  return err;
}

export function isRetryable(err: unknown): boolean {
  return err instanceof FleetError ? err.retryable : true;
}

export function errorCode(err: unknown): string {
  if (err instanceof FleetError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "INTERNAL";
}

// ---- transient failures: the one classifier behind the queue, store, provider and Auto Scaling adapters ----------

/** Socket and undici codes: the peer is gone, unreachable or too slow, not that the request was wrong. */
const TRANSIENT_NETWORK_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN",
  "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED", "UND_ERR_DESTROYED",
]);

/** AWS codes meaning "slow down / try later" even when the SDK calls them the client's fault. Any `*Throttl*` too. */
const TRANSIENT_AWS_CODES = new Set([
  "TooManyRequestsException", "RequestLimitExceeded", "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
  "InternalFailure", "InternalServerError", "RequestTimeout", "RequestTimeoutException", "TimeoutError",
  "ResourceContention", "ResourceContentionFault",
]);

export function isTransientNetworkCode(code: string): boolean {
  return TRANSIENT_NETWORK_CODES.has(code);
}

/** A transient socket code on the error, its causes or (AggregateError: Node's happy-eyeballs connect) its members. */
export function isTransientNetworkError(err: unknown): boolean {
  return errorCodes(err).some(isTransientNetworkCode);
}

/** An AWS error code, with or without a protocol prefix (`AWS.SimpleQueueService.RequestThrottled`). */
export function isTransientAwsCode(code: string): boolean {
  const bare = code.slice(code.lastIndexOf(".") + 1);
  return TRANSIENT_AWS_CODES.has(bare) || bare.includes("Throttl");
}

/** An AWS SDK error worth retrying: throttling, 5xx/429, the SDK's own `$retryable`, or a transient network error. */
export function isTransientAwsError(err: unknown): boolean {
  const e = (err ?? {}) as { name?: unknown; Code?: unknown; $fault?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.$retryable || e.$fault === "server" || (status !== undefined && (status >= 500 || status === 429))) return true;
  const names = [e.name, e.Code].filter((n): n is string => typeof n === "string");
  return names.some(isTransientAwsCode) || isTransientNetworkError(err);
}

/** `code` of the error, its causes and (AggregateError) its members, outermost first. */
export function errorCodes(err: unknown, seen = new Set<unknown>()): string[] {
  if (err === null || typeof err !== "object" || seen.has(err)) return [];
  seen.add(err);
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof e.code === "string" ? [e.code] : [];
  const members = Array.isArray(e.errors) ? e.errors.flatMap((m) => errorCodes(m, seen)) : [];
  return [...own, ...errorCodes(e.cause, seen), ...members];
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
