/**
 * An active check of one dependency (SELECT 1, GetQueueAttributes), bounded and cached. A load balancer may poll
 * /health/ready many times a second: each component then sees at most one call per `ttlMs`, and never two at once —
 * a call that outlives `timeoutMs` is reported down, and no new one starts until it has ended, so a hung database
 * costs one pooled connection, not one per probe.
 */
import { errorCode } from "../errors.ts";

export interface CheckResult {
  ok: boolean;
  /** How long the call took (up to the timeout when it did not answer). */
  latencyMs: number;
  /** A stable error code (STORE_UNAVAILABLE, QueueDoesNotExist, CHECK_TIMEOUT…), never a message: messages may name hosts. */
  error?: string;
  /** Epoch ms the result was taken. */
  checkedAt: number;
}

export interface ComponentCheckOptions {
  /** A result is reused this long. Default 1,000 ms. */
  ttlMs?: number;
  /** A call unanswered this long counts as down. Default 2,000 ms. */
  timeoutMs?: number;
}

const TIMED_OUT = Symbol("timed out");

export class ComponentCheck {
  private last: { result: CheckResult; at: number } | undefined;
  private checking: Promise<CheckResult> | undefined;
  /** The probe call itself, which may outlive the result reported for it. */
  private outstanding: Promise<unknown> | undefined;
  private readonly ttlMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly probe: (signal: AbortSignal) => Promise<unknown>,
    o: ComponentCheckOptions = {},
  ) {
    this.ttlMs = o.ttlMs ?? 1_000;
    this.timeoutMs = o.timeoutMs ?? 2_000;
  }

  /** The cached result while fresh; else the one check in flight, or a new one. */
  result(): Promise<CheckResult> {
    if (this.last !== undefined && performance.now() - this.last.at < this.ttlMs) return Promise.resolve(this.last.result);
    this.checking ??= this.run().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async run(): Promise<CheckResult> {
    const started = performance.now();
    if (this.outstanding !== undefined) return this.keep(started, "CHECK_TIMEOUT"); // the last call still hangs
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), this.timeoutMs)));
    const call = this.probe(abort.signal);
    const outstanding = (this.outstanding = call.then(
      () => undefined,
      () => undefined,
    ));
    void outstanding.then(() => {
      if (this.outstanding === outstanding) this.outstanding = undefined;
    });
    try {
      if ((await Promise.race([call, timedOut])) === TIMED_OUT) {
        abort.abort();
        return this.keep(started, "CHECK_TIMEOUT");
      }
      return this.keep(started);
    } catch (err) {
      return this.keep(started, errorCode(err));
    } finally {
      clearTimeout(timer);
    }
  }

  private keep(started: number, error?: string): CheckResult {
    const now = performance.now();
    const result: CheckResult = { ok: error === undefined, latencyMs: Math.round((now - started) * 10) / 10, checkedAt: Date.now(), ...(error === undefined ? {} : { error }) };
    this.last = { result, at: now };
    return result;
  }
}
