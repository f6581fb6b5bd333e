import { StoreError, isTransientNetworkError } from "../errors.ts";

/** Postgres refused the password. */
export const AUTH_FAILED_SQLSTATE = "28P01";

/**
 * SQLSTATEs that mean "try again later": admin/crash shutdown, cannot connect now, too many connections, and the
 * password refused (28P01: a rotation not yet picked up — never the job's fault; the password is fetched again).
 */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", AUTH_FAILED_SQLSTATE]);
/** pg raises these without a code when the socket dies or the pool times out waiting for a connection. */
const UNAVAILABLE_MESSAGES = [/connection terminated/i, /timeout exceeded when trying to connect/i, /not queryable/i, /connection timeout/i];

/**
 * Wrap whatever pg threw into a StoreError. Messages carry only the operation and the error code, never the
 * connection string (pg's own connection errors may name host and port; the original stays in `cause`).
 */
export function toStoreError(err: unknown, operation: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = typeof (err as { code?: unknown } | null)?.code === "string" ? (err as { code: string }).code : "";
  const message = err instanceof Error ? err.message : String(err);
  if (isTransientNetworkError(err) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08") || (code === "" && UNAVAILABLE_MESSAGES.some((re) => re.test(message)))) {
    return new StoreError("STORE_UNAVAILABLE", `store unavailable during ${operation} (${code || "connection lost"})`, true, { cause: err });
  }
  // Serialization failure, deadlock: the same statement may succeed when retried.
  if (code === "40001" || code === "40P01") {
    return new StoreError("STORE_CONFLICT", `store conflict during ${operation} (${code})`, true, { cause: err });
  }
  // Statement timeout and out-of-resources are transient; everything else (syntax, constraint) is a bug.
  const retryable = code === "57014" || code.startsWith("53");
  return new StoreError("STORE_QUERY_FAILED", `store query failed during ${operation}${code ? ` (${code})` : ""}: ${message}`, retryable, { cause: err });
}
