/**
 * Secrets given as AWS Secrets Manager ARNs instead of values: fetched together at start, kept in memory, refreshed
 * on an interval and on demand after an auth failure (at most one call per secret per `minRefreshSpacingMs`, so a
 * storm of 401s costs one GetSecretValue). Long-lived clients hold a SecretValue and read `current()` per request,
 * which is how a rotation reaches them without a restart. A value that is not an ARN passes through unchanged.
 *
 * Syntax: `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>[#<jsonKey>]` — the full ARN (with AWS's
 * 6-character suffix) or the partial one (without); `#jsonKey` picks a top-level field of a JSON secret
 * (RDS-managed secrets: `#password`). `#` cannot occur in a secret name, so the split is unambiguous.
 *
 * Invariant: a secret's value never reaches a log line or an error. Errors name the secret's name (from the ARN)
 * and the AWS error code only, and carry no `cause` (a JSON parse error would quote the value).
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { FleetError, errorCodes, isTransientAwsError, type FleetErrorOptions } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** The latest value of one secret; a plain (non-ARN) value never changes. */
export interface SecretValue {
  current(): string;
  /** Called with the new value after a rotation is seen. Returns the unsubscribe function. */
  onChange(listener: (value: string) => void): () => void;
  /** After an auth failure: fetch again unless fetched within the spacing. Never rejects on a fetch failure; true when the value changed. */
  refresh(signal?: AbortSignal): Promise<boolean>;
}

export interface SecretRef {
  /** What GetSecretValue is asked for: the ARN without `#jsonKey`. */
  secretId: string;
  region: string;
  /** The name part of the ARN, the only thing errors and logs say about the secret. */
  name: string;
  jsonKey?: string;
}

export type SecretErrorCode = "SECRET_NOT_FOUND" | "SECRET_ACCESS_DENIED" | "SECRET_UNAVAILABLE" | "SECRET_FETCH_FAILED" | "SECRET_MALFORMED";

/** A secret could not be resolved. `awsCode` is AWS's error code (or a socket code) when AWS answered or failed. */
export class SecretError extends FleetError {
  constructor(
    readonly code: SecretErrorCode,
    message: string,
    readonly retryable: boolean,
    readonly awsCode?: string,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

export interface SecretResolverOptions {
  /** Endpoint override (tests, the local stand-in, a VPC endpoint). Unset: Secrets Manager in each ARN's region. */
  endpoint?: string;
  /** Static credentials. Unset: the SDK's default chain, or dummy keys when `endpoint` is loopback. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** How often every ARN secret is fetched again. Default 300,000 ms (SECRETS_REFRESH_INTERVAL_MS). */
  refreshIntervalMs?: number;
  /** Least time between two fetches of one secret asked for by `refresh`. Default 10,000 ms. */
  minRefreshSpacingMs?: number;
  /** Rotations (info) and failed refreshes (warn), by secret name and AWS code only. */
  log?: Logger;
  /** Clock for the refresh spacing (tests). Default performance.now. */
  now?: () => number;
}

const DEFAULT_REFRESH_INTERVAL_MS = 300_000;
const DEFAULT_MIN_REFRESH_SPACING_MS = 10_000;
const ARN = /^(arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):(\d{12}):secret:([A-Za-z0-9/_+=.@-]+))(?:#([^#]+))?$/;
/** Anything shaped like this is meant as an ARN: a typo must fail, not be sent as the password. */
const ARN_LIKE = /^arn:[^:]*:secretsmanager:/;
const ACCESS_CODES = new Set(["AccessDeniedException", "DecryptionFailure", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"]);

/** The parsed ARN, or undefined for a plain value. Throws SECRET_MALFORMED for an ARN-like value that does not parse. */
export function parseSecretRef(value: string, variable = "secret"): SecretRef | undefined {
  if (!ARN_LIKE.test(value)) return undefined;
  const m = ARN.exec(value);
  if (m === null) {
    throw new SecretError("SECRET_MALFORMED", `${variable}: not a Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>[#<jsonKey>])`, false);
  }
  return { secretId: m[1]!, region: m[2]!, name: m[4]!, ...(m[5] === undefined ? {} : { jsonKey: m[5] }) };
}

/** A SecretValue for a plain value: what non-ARN settings become. */
export function fixedSecret(value: string): SecretValue {
  return { current: () => value, onChange: () => () => undefined, refresh: async () => false };
}

/** One ARN (without #key) and every variable reading it. */
interface Source {
  ref: SecretRef;
  text?: string;
  versionId?: string;
  lastFetchAt: number;
  inFlight?: Promise<boolean>;
  holders: Holder[];
}

class Holder implements SecretValue {
  private listeners = new Set<(value: string) => void>();

  constructor(
    readonly variable: string,
    readonly jsonKey: string | undefined,
    private value: string,
    private readonly refreshFn: (signal?: AbortSignal) => Promise<boolean>,
    private readonly onListenerError: () => void,
  ) {}

  current(): string {
    return this.value;
  }

  onChange(listener: (value: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  refresh(signal?: AbortSignal): Promise<boolean> {
    return this.refreshFn(signal);
  }

  /** True when the value changed. */
  set(next: string): boolean {
    if (next === this.value) return false;
    this.value = next;
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch {
        // A listener's error could quote the value: report that it failed, nothing of what it said.
        this.onListenerError();
      }
    }
    return true;
  }
}

export class SecretResolver {
  private readonly sources = new Map<string, Source>();
  private readonly holders = new Map<string, Holder>();
  private readonly clients = new Map<string, SecretsManagerClient>();
  private readonly closed = new AbortController();
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: SecretResolverOptions = {}) {
    this.now = o.now ?? (() => performance.now());
  }

  /**
   * Resolve every variable at once: plain values pass through, ARNs are fetched in parallel (one call per
   * distinct secret). Rejects with a SecretError naming every secret that failed; starts the refresh timer.
   */
  async resolveAll<K extends string>(raw: { [P in K]?: string }, signal?: AbortSignal): Promise<{ [P in K]?: SecretValue }> {
    const out: { [P in K]?: SecretValue } = {};
    const wanted: Array<{ variable: K; ref: SecretRef }> = [];
    for (const variable of Object.keys(raw) as K[]) {
      const value = raw[variable];
      if (value === undefined) continue;
      const ref = parseSecretRef(value, variable);
      if (ref === undefined) out[variable] = fixedSecret(value);
      else wanted.push({ variable, ref });
    }
    // Registered only once every secret fetched and every #jsonKey was found: a failed start leaves nothing behind.
    const fresh = new Map<string, Source>();
    for (const { ref } of wanted) {
      if (!this.sources.has(ref.secretId) && !fresh.has(ref.secretId)) fresh.set(ref.secretId, { ref, lastFetchAt: -Infinity, holders: [] });
    }
    const fetched = await Promise.allSettled([...fresh.values()].map((s) => this.fetch(s, anySignal(this.closed.signal, signal))));
    signal?.throwIfAborted();
    const failures: unknown[] = fetched.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    const values = new Map<K, string>();
    for (const { variable, ref } of failures.length > 0 ? [] : wanted) {
      try {
        values.set(variable, extract((this.sources.get(ref.secretId) ?? fresh.get(ref.secretId)!).text!, ref));
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw combined(failures);
    for (const [id, source] of fresh) this.sources.set(id, source);
    for (const { variable, ref } of wanted) out[variable] = this.holderFor(variable, ref, values.get(variable)!);
    this.startTimer();
    return out;
  }

  /** `refresh` of the variable's SecretValue (e.g. `refresh("VLLM_API_KEY")` after a 401). False for unknown or plain ones. */
  refresh(variable: string, signal?: AbortSignal): Promise<boolean> {
    const holder = this.holders.get(variable);
    return holder === undefined ? Promise.resolve(false) : holder.refresh(signal);
  }

  /** Stops the refresh timer and cuts any fetch in flight. Idempotent. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.closed.abort();
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }

  private holderFor(variable: string, ref: SecretRef, value: string): Holder {
    const source = this.sources.get(ref.secretId)!;
    const holder = new Holder(
      variable,
      ref.jsonKey,
      value,
      (signal) => this.gatedFetch(source, signal),
      () => this.o.log?.warn({ secret: ref.name, variable }, "a listener of a secret rotation threw"),
    );
    source.holders.push(holder);
    this.holders.set(variable, holder);
    return holder;
  }

  private startTimer(): void {
    if (this.timer !== undefined || this.sources.size === 0 || this.closed.signal.aborted) return;
    this.timer = setInterval(() => {
      for (const source of this.sources.values()) void this.gatedFetch(source);
    }, this.o.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS);
    this.timer.unref();
  }

  /** One fetch per secret at a time and none within the spacing; failures keep the current value and are logged. */
  private gatedFetch(source: Source, signal?: AbortSignal): Promise<boolean> {
    if (this.closed.signal.aborted) return Promise.resolve(false);
    if (source.inFlight === undefined && this.now() - source.lastFetchAt >= (this.o.minRefreshSpacingMs ?? DEFAULT_MIN_REFRESH_SPACING_MS)) {
      source.inFlight = this.fetch(source, this.closed.signal)
        .catch((err: unknown) => {
          if (!this.closed.signal.aborted) {
            this.o.log?.warn({ secret: source.ref.name, code: err instanceof SecretError ? (err.awsCode ?? err.code) : "INTERNAL" }, "secret refresh failed; keeping the current value");
          }
          return false;
        })
        .finally(() => (source.inFlight = undefined));
    }
    // The fetch is shared by every caller; one caller's abort only stops its own wait.
    return source.inFlight === undefined ? Promise.resolve(false) : untilAborted(source.inFlight, signal);
  }

  /** GetSecretValue and apply it to every holder; true when any holder's value changed. */
  private async fetch(source: Source, signal: AbortSignal): Promise<boolean> {
    const { ref } = source;
    source.lastFetchAt = this.now();
    let text: string;
    let versionId: string | undefined;
    try {
      const out = await this.client(ref.region).send(new GetSecretValueCommand({ SecretId: ref.secretId }), { abortSignal: signal });
      if (out.SecretString === undefined) throw new SecretError("SECRET_MALFORMED", `secret ${ref.name}: has no SecretString (binary secrets are not supported)`, false);
      text = out.SecretString;
      versionId = out.VersionId;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err instanceof SecretError ? err : awsFailure(ref.name, err);
    }
    // Check every field before changing anything: a bad rotation keeps the whole old set.
    const next = source.holders.map((h) => extract(text, { ...ref, jsonKey: h.jsonKey }));
    if (source.text !== undefined && versionId !== source.versionId) this.o.log?.info({ secret: ref.name, versionId }, "secret rotated");
    source.text = text;
    source.versionId = versionId;
    return source.holders.map((h, i) => h.set(next[i]!)).some(Boolean);
  }

  private client(region: string): SecretsManagerClient {
    let client = this.clients.get(region);
    if (client === undefined) {
      const credentials = this.o.credentials ?? (isLoopback(this.o.endpoint) ? { accessKeyId: "local", secretAccessKey: "local" } : undefined);
      client = new SecretsManagerClient({
        region,
        ...(this.o.endpoint === undefined ? {} : { endpoint: this.o.endpoint }),
        ...(credentials === undefined ? {} : { credentials }),
        // Bounded: the worker waits for these before it takes work.
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
      });
      this.clients.set(region, client);
    }
    return client;
  }
}

/** The secret's string, or one top-level field of it as JSON. Errors name the key, never quote the text. */
function extract(text: string, ref: SecretRef): string {
  if (ref.jsonKey === undefined) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SecretError("SECRET_MALFORMED", `secret ${ref.name}: #${ref.jsonKey} asked for, but the secret is not JSON`, false);
  }
  const field = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>)[ref.jsonKey] : undefined;
  if (typeof field === "string") return field;
  if (typeof field === "number" || typeof field === "boolean") return String(field);
  throw new SecretError("SECRET_MALFORMED", `secret ${ref.name}: no string field "${ref.jsonKey}" in its JSON`, false);
}

/** An SDK failure as a SecretError: the name and AWS's code, nothing the SDK said. */
function awsFailure(name: string, err: unknown): SecretError {
  const sdkName = (err as { name?: unknown } | null)?.name;
  const awsCode = typeof sdkName === "string" && sdkName !== "Error" && !sdkName.endsWith("ServiceException") ? sdkName : (errorCodes(err)[0] ?? "UnknownError");
  const statusCode = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  const options = statusCode === undefined ? {} : { statusCode };
  if (awsCode === "ResourceNotFoundException") return new SecretError("SECRET_NOT_FOUND", `secret ${name}: ${awsCode}`, false, awsCode, options);
  if (ACCESS_CODES.has(awsCode)) return new SecretError("SECRET_ACCESS_DENIED", `secret ${name}: ${awsCode}`, false, awsCode, options);
  if (isTransientAwsError(err)) return new SecretError("SECRET_UNAVAILABLE", `secret ${name}: ${awsCode}`, true, awsCode, options);
  return new SecretError("SECRET_FETCH_FAILED", `secret ${name}: ${awsCode}`, false, awsCode, options);
}

/** One error for every secret that failed at start, so a deployment fixes them in one go. */
function combined(failures: unknown[]): unknown {
  const secretErrors = failures.filter((f): f is SecretError => f instanceof SecretError);
  if (secretErrors.length !== failures.length) return failures.find((f) => !(f instanceof SecretError));
  if (secretErrors.length === 1) return secretErrors[0];
  const first = secretErrors[0]!;
  const message = `secrets unavailable: ${secretErrors.map((e) => e.message).join("; ")}`;
  return new SecretError(first.code, message, secretErrors.every((e) => e.retryable), first.awsCode);
}

function anySignal(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b === undefined ? a : AbortSignal.any([a, b]);
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** A local stand-in has no auth; the SDK still signs, so it needs some keys. */
function isLoopback(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false;
  try {
    const host = new URL(endpoint).hostname;
    return host === "localhost" || host === "127.0.0.1" || host === "[::1]";
  } catch {
    return false;
  }
}
