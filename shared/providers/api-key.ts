/**
 * A provider client's API key: a fixed string or a SecretValue from the resolver. Read per request, so a rotation
 * reaches the next call without a restart; after an auth failure the client asks for one refresh and retries once
 * if the key changed. The values sent lately stay on the redaction list: a server may quote the key it was sent
 * (Google's DebugInfo does), and that can be the one before a rotation.
 */
import { fixedSecret, type SecretValue } from "../secrets.ts";
import { abortError } from "./provider.ts";

/** Distinct values remembered for redaction; rotations are rare, so this is a handful of keys at most. */
const REMEMBERED_KEYS = 4;

export class ApiKey {
  private readonly holder?: SecretValue;
  private readonly sent: string[] = [];

  constructor(key: string | SecretValue | undefined) {
    this.holder = typeof key === "string" ? fixedSecret(key) : key;
  }

  /** The value for this request's header (undefined: no key configured); remembered for redaction. */
  current(): string | undefined {
    const value = this.holder?.current();
    if (value !== undefined && value !== "" && !this.sent.includes(value)) {
      this.sent.push(value);
      if (this.sent.length > REMEMBERED_KEYS) this.sent.shift();
    }
    return value;
  }

  /** Strings no error message may contain: the current key and those sent lately. */
  redactions(): string[] {
    const now = this.holder?.current();
    return now === undefined || now === "" || this.sent.includes(now) ? [...this.sent] : [...this.sent, now];
  }

  /**
   * After an auth failure: ask the secret for its latest value (rate-limited by the resolver, never rejects on a
   * fetch failure). True when it changed, i.e. one retry is worth it. The caller's abort rejects with an AbortError.
   */
  async refreshed(signal?: AbortSignal): Promise<boolean> {
    if (this.holder === undefined) return false;
    try {
      return await this.holder.refresh(signal);
    } catch {
      if (signal?.aborted) throw abortError(signal.reason);
      return false; // the auth error is what the caller reports
    }
  }
}
