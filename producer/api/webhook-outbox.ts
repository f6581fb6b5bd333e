/**
 * Webhook deliveries, durable: an event is a row in `api_webhook_deliveries` before anything is sent, so an API
 * restart loses nothing; any replica sends due rows (claimed with SKIP LOCKED, the claim pushing the row's next
 * attempt past the send's timeout, so a replica that dies mid-send leaves it to be retried). Each attempt is a POST
 * of the stored body signed afresh (webhook-signature.ts); 2xx delivers, anything else is retried with exponential
 * backoff until API_WEBHOOK_MAX_ATTEMPTS, then recorded `failed`. At least once: receivers dedupe on the event `id`.
 * Nothing here runs on a worker or a request's path: enqueue is one INSERT, sending happens in this loop.
 *
 * Reused by the batch plugin: `outbox.enqueue([{ tenant, url, event: "batch.completed", subjectId, data }])`.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { backoffMs } from "../../shared/backoff.ts";
import { errorCodes } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { toStoreError } from "../../shared/store/store-errors.ts";
import { SIGNATURE_HEADER, signWebhook } from "./webhook-signature.ts";

export interface WebhookEvent {
  tenant: string;
  url: string;
  /** `job.completed`, `batch.completed`, ...: one delivery per (tenant, event, subjectId); a repeat is ignored. */
  event: string;
  subjectId: string;
  /** The envelope's `data`: the job or batch object. */
  data: unknown;
}

export interface WebhookOutboxOptions {
  pool: pg.Pool;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often due rows are looked for without a kick (retries, other replicas' events). */
  sweepIntervalMs: number;
  log: Pick<Logger, "warn" | "info">;
  /** Deliveries claimed and sent at once. Default 16. */
  batchSize?: number;
}

interface Claimed {
  id: string;
  tenant: string;
  url: string;
  event: string;
  body: string;
  attempts: number;
  secret: string | null;
}
interface Sent {
  ok: boolean;
  status: number | null;
  error: string | null;
}

/** A claim outlives the send it covers by this much before another replica may take the row. */
const CLAIM_MARGIN_MS = 30_000;
const TERMINAL_ERROR_CHARS = 500;

const ENQUEUE_SQL = `
INSERT INTO api_webhook_deliveries (tenant, url, event, subject_id, body)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (tenant, event, subject_id) DO NOTHING
RETURNING id`;
const CLAIM_SQL = `
WITH due AS (
  SELECT id FROM api_webhook_deliveries
   WHERE status = 'pending' AND next_attempt_at <= now()
   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE api_webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + $2::int * interval '1 millisecond'
  FROM due WHERE d.id = due.id
RETURNING d.id::text, d.tenant, d.url, d.event, d.body, d.attempts,
          (SELECT t.webhook_secret FROM api_tenants t WHERE t.tenant = d.tenant) AS secret`;
const DELIVERED_SQL = `
UPDATE api_webhook_deliveries d SET status = 'delivered', delivered_at = now(), last_status = t.status, last_error = NULL
  FROM unnest($1::bigint[], $2::int[]) AS t(id, status) WHERE d.id = t.id`;
const RETRY_SQL = `
UPDATE api_webhook_deliveries d
   SET status = CASE WHEN d.attempts >= $5::int THEN 'failed' ELSE 'pending' END,
       next_attempt_at = now() + t.delay_ms * interval '1 millisecond', last_status = t.status, last_error = t.error
  FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[]) AS t(id, status, error, delay_ms) WHERE d.id = t.id`;

export class WebhookOutbox {
  private readonly stopping = new AbortController();
  private readonly sweeps: (() => Promise<void>)[] = [];
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private kicked = false;
  private soonestRetry = Number.POSITIVE_INFINITY;
  private failing = false;

  constructor(private readonly o: WebhookOutboxOptions) {}

  /** Store events for delivery (inside the caller's transaction when `client` is given); returns how many were new. */
  async enqueue(events: WebhookEvent[], client?: pg.ClientBase): Promise<number> {
    if (events.length === 0) return 0;
    const created = new Date().toISOString();
    const bodies = events.map((e) => JSON.stringify({ id: `evt_${randomBytes(12).toString("hex")}`, object: "event", type: e.event, created_at: created, data: e.data }));
    const values = [events.map((e) => e.tenant), events.map((e) => e.url), events.map((e) => e.event), events.map((e) => e.subjectId), bodies];
    try {
      const res = await (client ?? this.o.pool).query(ENQUEUE_SQL, values);
      if (client === undefined) this.kick();
      return res.rowCount ?? 0;
    } catch (err) {
      throw toStoreError(err, "webhooks_enqueue");
    }
  }

  /** Run `fn` before each round (the job webhooks move ended jobs' webhooks in here). */
  addSweep(fn: () => Promise<void>): void {
    this.sweeps.push(fn);
  }

  /** Look for due rows now instead of at the next sweep. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stop claiming; sends in flight are cut (their rows are retried by whichever replica runs next). Idempotent. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      this.kicked = false;
      let full = false;
      try {
        for (const sweep of this.sweeps) await sweep();
        full = (await this.dispatchDue()) === (this.o.batchSize ?? 16);
        this.noteFailure(undefined);
      } catch (err) {
        this.noteFailure(err);
      }
      if (full || this.kicked) continue;
      const untilRetry = this.soonestRetry - performance.now();
      await this.nap(Math.max(0, Math.min(this.o.sweepIntervalMs, untilRetry)), signal);
      if (performance.now() >= this.soonestRetry) this.soonestRetry = Number.POSITIVE_INFINITY;
    }
  }

  /** Claim up to a batch of due deliveries, send them at once, record the outcomes; returns how many were claimed. */
  async dispatchDue(): Promise<number> {
    const batch = this.o.batchSize ?? 16;
    let claimed: Claimed[];
    try {
      claimed = (await this.o.pool.query<Claimed>(CLAIM_SQL, [batch, this.o.timeoutMs + CLAIM_MARGIN_MS])).rows;
    } catch (err) {
      throw toStoreError(err, "webhooks_claim");
    }
    if (claimed.length === 0) return 0;
    const sent = await Promise.all(claimed.map((d) => this.send(d)));
    if (this.stopping.signal.aborted) return claimed.length; // cut short: the claims expire and the rows are retried
    const ok = claimed.filter((_, i) => sent[i]!.ok);
    const failed = claimed.map((d, i) => ({ d, s: sent[i]! })).filter((x) => !x.s.ok);
    const delays = failed.map((x) => backoffMs(x.d.attempts - 1, this.o.retryBaseMs, this.o.retryMaxMs));
    try {
      if (ok.length > 0) await this.o.pool.query(DELIVERED_SQL, [ok.map((d) => d.id), ok.map((d) => sent[claimed.indexOf(d)]!.status)]);
      if (failed.length > 0) {
        await this.o.pool.query(RETRY_SQL, [failed.map((x) => x.d.id), failed.map((x) => x.s.status), failed.map((x) => x.s.error), delays, this.o.maxAttempts]);
      }
    } catch (err) {
      throw toStoreError(err, "webhooks_settle");
    }
    for (const [i, x] of failed.entries()) {
      if (x.d.attempts >= this.o.maxAttempts) this.o.log.warn({ delivery: x.d.id, tenant: x.d.tenant, event: x.d.event, attempts: x.d.attempts, reason: x.s.error }, "webhook given up");
      else this.soonestRetry = Math.min(this.soonestRetry, performance.now() + delays[i]!);
    }
    return claimed.length;
  }

  private async send(d: Claimed): Promise<Sent> {
    if (d.secret === null) return { ok: false, status: null, error: "the tenant has no signing secret" };
    const cut = new AbortController();
    const timer = setTimeout(() => cut.abort(), this.o.timeoutMs);
    const onStop = () => cut.abort();
    this.stopping.signal.addEventListener("abort", onStop, { once: true });
    try {
      const res = await fetch(d.url, {
        method: "POST",
        body: d.body,
        redirect: "manual",
        signal: cut.signal,
        headers: { "content-type": "application/json", "user-agent": "llm-fleet-webhooks/1", "x-fleet-event": d.event, [SIGNATURE_HEADER]: signWebhook(d.secret, d.body) },
      });
      await res.body?.cancel().catch(() => undefined);
      const ok = res.status >= 200 && res.status < 300;
      return { ok, status: res.status, error: ok ? null : `answered HTTP ${res.status}` };
    } catch (err) {
      // Codes only: a message may carry the URL, and the URL may carry a token.
      const why = cut.signal.aborted ? `no answer within ${this.o.timeoutMs} ms` : (errorCodes(err)[0] ?? (err as Error).name);
      return { ok: false, status: null, error: why.slice(0, TERMINAL_ERROR_CHARS) };
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener("abort", onStop);
    }
  }

  /** Sleeps `ms`, cut short by kick() or stop. */
  private nap(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.wake = done;
    });
  }

  private noteFailure(err: unknown): void {
    if ((err !== undefined) === this.failing) return;
    this.failing = err !== undefined;
    if (this.failing) this.o.log.warn({ reason: (err as Error).message }, "webhook deliveries paused: the store is unreachable; retrying");
    else this.o.log.info("webhook deliveries resumed");
  }
}
