/**
 * One message, start to end: decode → one-at-a-time guard → expiry check → claim (Postgres lease) → provider →
 * persist → settle. The rules that keep jobs safe:
 * - a message is deleted only after its outcome is durable in Postgres; every other path leaves it (or hands it
 *   back) to SQS for redelivery, or moves it to the DLQ with its reason;
 * - at most one provider call per job at a time: this worker never runs a job it is already running (the guard is
 *   taken before any await), and other workers are kept out by the lease;
 * - a message never changes another tenant's job: the first owner keeps the id, a conflicting message is
 *   dead-lettered with JOB_ID_CONFLICT;
 * - a job whose delivery is spent without an outcome (retryable failure on the last delivery) is recorded `dead`;
 * - a job whose earlier workers died holding it runs alone among such jobs here (suspects.ts), and one that took
 *   down maxReceiveCount workers is recorded `dead` (WORKER_LOST) and dead-lettered without running again.
 * Every line about a job goes through its own logger (requestId, tenant, traceId); its trace comes from the message's
 * `traceparent` attribute (a fresh one when that is missing or invalid), goes to the provider and into the record.
 */
import type pLimit from "p-limit";
import { decodeJob, type Job } from "../shared/contract.ts";
import { ContractError, errorCode, FleetError, isRetryable, ProviderRetryableError, StoreError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { JobOutcome } from "../shared/metrics/fleet-metrics.ts";
import { TRACEPARENT, traceOrNew } from "../shared/trace.ts";
import { CallDeadline, type Completion, type Provider } from "../shared/providers/provider.ts";
import type { JobRecord } from "../shared/store/job-record.ts";
import type { DurableStore } from "./durable-store.ts";
import type { HeldMessage } from "./heartbeat.ts";
import type { Settlement } from "./settlement.ts";
import { Suspects } from "./suspects.ts";

export interface ProcessorOptions {
  workerId: string;
  store: DurableStore;
  settlement: Settlement;
  /** Hot-path publish (Redis); never fails a job. */
  publish?: (record: JobRecord) => void;
  provider: Provider;
  limit: ReturnType<typeof pLimit>;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  jobDefaultTtlSeconds: number;
  /**
   * Least delay before a job whose backend failed runs again: one long poll. A receive cut when the circuit opens
   * may still be served by SQS until its wait ends, so a job handed back sooner could be taken by it, spending a
   * second delivery on the same outage.
   */
  backendRetryFloorSeconds: number;
  log: Logger;
  /** LOG_BODIES: each job's prompt and answer at debug level (the logger masks them). */
  logBodies?: boolean;
  /** True while the provider circuit is open: held jobs are handed back without a call. */
  circuitOpen: () => boolean;
  /** Counts provider calls in flight (adaptive concurrency reads it). */
  onProviderCall: (delta: 1 | -1) => void;
}

/** How a message's handling ended: the metrics' own list, so the two cannot drift. */
export type Outcome = JobOutcome;


class CircuitOpenError extends ProviderRetryableError {
  constructor() {
    super("PROVIDER_CIRCUIT_OPEN", "provider circuit open: job handed back without a provider call");
  }
}

export class Processor {
  /** Jobs this worker has in hand now (claim to settle), by id. */
  private readonly active = new Map<string, Promise<Outcome>>();
  private readonly suspects = new Suspects();

  constructor(private readonly o: ProcessorOptions) {}

  /** Never throws but for a store write abandoned at hard stop: every other failure ends in a settled message. */
  async process(held: HeldMessage, stop: AbortSignal, draining: AbortSignal): Promise<Outcome> {
    const { message } = held;
    const trace = (held.trace = traceOrNew(message.attributes?.[TRACEPARENT]));
    let job: Job;
    try {
      job = decodeJob(message.body);
    } catch (err) {
      return this.poison(held, err);
    }
    held.log = this.o.log.child({ requestId: job.id, tenant: job.tenant, traceId: trace.traceId });
    // A copy of a job in hand here (duplicate send, redelivery) waits for it to settle, then looks again — usually
    // to find it finished and only delete this copy. The slot is taken before any await, so two never run at once.
    for (let earlier = this.active.get(job.id); earlier !== undefined; earlier = this.active.get(job.id)) await earlier.catch(() => undefined);
    const running = this.claimAndRun(job, held, stop, draining);
    this.active.set(job.id, running);
    held.jobId = job.id;
    try {
      return await running;
    } finally {
      this.active.delete(job.id);
    }
  }

  private async claimAndRun(job: Job, held: HeldMessage, stop: AbortSignal, draining: AbortSignal): Promise<Outcome> {
    const { message } = held;
    const deadlineAt = this.deadlineOf(job);
    if (deadlineAt !== undefined && Date.now() >= deadlineAt) {
      return this.finishAndAck(held, job, { status: "expired", code: "JOB_EXPIRED", message: `deadline ${new Date(deadlineAt).toISOString()} passed before the job started` });
    }
    held.deadlineAt = deadlineAt;
    if (draining.aborted) {
      // Not started yet and we are shutting down: hand it straight back to the queue.
      await this.handBack(held, job.id);
      return "released";
    }
    let claim;
    try {
      const traceId = held.trace?.traceId;
      claim = await this.suspects.claiming(this.o.store.claim({ job, workerId: this.o.workerId, leaseMs: this.o.visibilityTimeoutSeconds * 1000, messageId: message.messageId, receiveCount: message.receiveCount, traceId }));
    } catch (err) {
      if (isRetryable(err)) throw err;
      return this.unstorable(held, job, err);
    }
    if (claim.kind === "finished") {
      await this.o.settlement.ack(message, held.log);
      return "duplicate";
    }
    if (claim.kind === "conflict") return this.conflict(held, job.id, claim.owner);
    if (claim.kind === "leased") {
      // Another live worker runs this job: come back when its lease would have run out, to find it finished.
      const wait = Math.ceil((claim.expiresAt.getTime() - Date.now()) / 1000) + 1;
      held.log.debug({ messageId: message.messageId, owner: claim.owner, waitSeconds: wait }, "leased by a live worker: handed back");
      await this.handBack(held, job.id, Math.max(1, Math.min(this.o.visibilityTimeoutSeconds, wait)));
      return "leased";
    }
    const losses = claim.workerLosses;
    if (losses >= this.o.maxReceiveCount) return this.tookDownTooMany(held, job, losses);
    if (!this.suspects.isSuspect(losses)) return this.run(job, held, deadlineAt, stop, claim.attempts);
    if (!this.suspects.tryEnter()) return this.defer(held, job, losses);
    held.log.info({ workerLosses: losses }, "earlier workers died holding this job: it runs alone among such jobs");
    try {
      return await this.run(job, held, deadlineAt, stop, claim.attempts, true);
    } finally {
      this.suspects.leave();
    }
  }

  /** Another suspect runs here: hand this one back after a random delay, so the group that died together scatters. */
  private async defer(held: HeldMessage, job: Job, losses: number): Promise<Outcome> {
    const delaySeconds = this.suspects.deferSeconds(this.o.visibilityTimeoutSeconds);
    held.log.info({ workerLosses: losses, delaySeconds }, "earlier workers died holding this job and another such job runs here: handed back");
    const message = `${losses} earlier workers died holding this job; deferred while another such job ran`;
    // A fresh copy: its deliveries went to workers that died around it; worker_losses, not SQS's count, bounds it now.
    await this.suspects.track(this.releaseAndHandBack(held, job.id, { code: "WORKER_LOST", message }, delaySeconds, true));
    return "deferred";
  }

  /** maxReceiveCount workers died holding this job: it is what kills them. Record why and move it to the DLQ unrun. */
  private async tookDownTooMany(held: HeldMessage, job: Job, losses: number): Promise<Outcome> {
    const reason = `${losses} workers died holding this job without an outcome; it is not run again`;
    await this.o.store.finish({ ...this.owned(job, held), status: "dead", code: "WORKER_LOST", message: reason });
    held.log.error({ status: "dead", code: "WORKER_LOST", reason }, "job dead");
    await this.o.settlement.deadLetter(held.message, { code: "WORKER_LOST", message: reason }, held.log);
    return "dead";
  }

  private async run(job: Job, held: HeldMessage, deadlineAt: number | undefined, stop: AbortSignal, attempts: number, isolated = false): Promise<Outcome> {
    const { message } = held;
    const startedAt = new Date();
    // One signal for: hard stop, the job's deadline, and the message being lost (no longer ours to run).
    const cut = new JobSignal([stop, held.lost.signal], deadlineAt);
    try {
      const completion = await this.o.limit(() => this.call(job, held, cut.signal, isolated));
      if (this.o.logBodies) held.log.debug({ answer: completion.text }, "job answer");
      const outcome = await this.o.store.complete({
        id: job.id,
        workerId: this.o.workerId,
        output: completion.text,
        finishReason: completion.finishReason,
        promptTokens: completion.promptTokens,
        completionTokens: completion.completionTokens,
        provider: completion.provider,
        model: completion.model,
        costUsd: completion.costUsd,
        latencyMs: completion.latencyMs,
        providerAttempts: completion.attempts,
        traceId: held.trace?.traceId,
      });
      if (outcome === "lost_lease") {
        // Our lease ran out (e.g. during a store outage) and another worker holds the job now: its outcome
        // decides. Keep the message; if that worker dies too, the message comes back to find the job claimable.
        return "leased";
      }
      if (outcome === "written") this.o.publish?.(succeededRecord(job, completion, attempts, startedAt, held.trace?.traceId));
      await this.o.settlement.ack(message, held.log);
      return "succeeded";
    } catch (err) {
      // A store refusal of this row's own data (the store retries connection trouble itself).
      if (err instanceof StoreError && !err.retryable) return this.unstorable(held, job, err);
      return this.onFailure(job, held, err, stop, deadlineAt);
    } finally {
      cut.dispose();
    }
  }

  /** The provider call itself, inside the concurrency limit. A job whose turn comes while the circuit is open is not called. */
  private async call(job: Job, held: HeldMessage, signal: AbortSignal, isolated: boolean): Promise<Completion> {
    // A suspect waits for its batch-mates' hand-backs: they must be safe on the queue before it can crash the process.
    if (isolated) await this.suspects.quiet();
    signal.throwIfAborted();
    if (this.o.circuitOpen()) throw new CircuitOpenError();
    this.o.onProviderCall(1);
    this.o.store.noteProviderCall(job.id);
    // Bodies only on request, at debug level; the logger masks personal data under `prompt` and `answer`.
    if (this.o.logBodies) held.log.debug({ prompt: job.messages ?? job.prompt }, "job prompt");
    try {
      const req = { messages: job.messages, prompt: job.prompt, model: job.model, params: job.params, requestId: job.id, trace: held.trace, risk: job.risk, deadlineAt: this.deadlineOf(job) };
      return await this.o.provider.generate(req, signal);
    } finally {
      this.o.onProviderCall(-1);
    }
  }

  private async onFailure(job: Job, held: HeldMessage, err: unknown, stop: AbortSignal, deadlineAt?: number): Promise<Outcome> {
    const { message } = held;
    if (held.lost.signal.aborted) {
      // The message is no longer ours (SQS refused its extension): it may be running elsewhere. Free the lease, touch nothing else.
      await this.o.store.release({ id: job.id, workerId: this.o.workerId, code: "MESSAGE_LOST", message: "the message was no longer held by this worker" }).catch(() => undefined);
      return "released";
    }
    // Every provider turned the job away without a call: it spent nothing on the outage but this delivery.
    if (stop.aborted || errorCode(err) === "PROVIDER_CIRCUIT_OPEN") {
      const code = stop.aborted ? "WORKER_STOPPED" : "PROVIDER_CIRCUIT_OPEN";
      const message = code === "WORKER_STOPPED" ? "worker stopped before the job finished" : (err as Error).message;
      await this.releaseAndHandBack(held, job.id, { code, message }, stop.aborted ? 0 : this.o.backendRetryFloorSeconds);
      return "released";
    }
    if (deadlineAt !== undefined && Date.now() >= deadlineAt) {
      return this.finishAndAck(held, job, { status: "expired", code: "JOB_EXPIRED", message: "deadline passed while the job ran" });
    }
    const code = errorCode(err);
    const text = describe(err);
    if (!isRetryable(err)) return this.finishAndAck(held, job, { status: "failed", code, message: text });
    if (message.receiveCount >= this.o.maxReceiveCount) {
      // The last delivery SQS allows: record why, then let the redrive policy move the message to the DLQ.
      const reason = `gave up after ${message.receiveCount} deliveries: ${text}`;
      await this.o.store.finish({ ...this.owned(job, held), status: "dead", code, message: reason });
      held.log.warn({ status: "dead", code, reason }, "job dead");
      await this.o.settlement.retryLater(message, 0, held.log);
      return "dead";
    }
    held.log.debug({ code, reason: text, receiveCount: message.receiveCount }, "job failed; it will run again");
    await this.o.store.release({ id: job.id, workerId: this.o.workerId, code, message: text });
    const retryAfter = err instanceof FleetError && err.retryAfterMs !== undefined ? Math.ceil(err.retryAfterMs / 1000) : 0;
    // Backend trouble (what the circuit counts) waits out a long poll; see backendRetryFloorSeconds.
    const floor = err instanceof ProviderRetryableError ? this.o.backendRetryFloorSeconds : 0;
    await this.o.settlement.retryLater(message, Math.min(this.o.visibilityTimeoutSeconds, Math.max(retryAfter, floor, 2 ** message.receiveCount)), held.log);
    return "retry";
  }

  /** decodeJob throws only ContractError; anything else is a bug and propagates. */
  private async poison(held: HeldMessage, err: unknown): Promise<Outcome> {
    if (!(err instanceof ContractError)) throw err;
    const { message } = held;
    const raw = rawFields(message.body);
    const traceId = held.trace?.traceId;
    const log = (held.log = this.o.log.child({ requestId: err.jobId, tenant: raw.tenant, traceId }));
    // `reason` is free text (a JSON parse error quotes the body): the logger masks personal data in it.
    log.warn({ messageId: message.messageId, code: err.code, reason: err.message }, "poison message");
    if (err.jobId === undefined) {
      await this.o.settlement.deadLetter(message, err, log);
      return "poison";
    }
    let outcome;
    try {
      // Insert only: a poison message never changes a job that already exists (it may be another tenant's).
      outcome = await this.o.store.finish({ id: err.jobId, status: "failed", code: err.code, message: err.message, tenant: raw.tenant, request: raw.request, createdAt: raw.createdAt, poison: true, traceId });
    } catch (finishErr) {
      if (isRetryable(finishErr)) throw finishErr;
      await this.o.settlement.deadLetter(message, { code: err.code, message: `${err.message} (no record: ${describe(finishErr)})` }, log);
      return "poison";
    }
    if (outcome === "conflict") {
      await this.o.settlement.deadLetter(message, { code: err.code, message: `${err.message} (id ${err.jobId} already names a job; that job is left as it is)` }, log);
    } else {
      await this.o.settlement.ack(message, log);
    }
    return "poison";
  }

  /** The store refused this job's own data for good (not the connection): record it failed, or dead-letter it. */
  private async unstorable(held: HeldMessage, job: Job, err: unknown): Promise<Outcome> {
    const { message, log } = held;
    const reason = `the store refused this job's data: ${describe(err)}`;
    log.error({ err, messageId: message.messageId }, "job data refused by the store");
    try {
      const outcome = await this.o.store.finish({ id: job.id, status: "failed", code: "JOB_UNSTORABLE", message: reason, workerId: this.o.workerId, tenant: job.tenant, createdAt: job.created_at, traceId: held.trace?.traceId });
      if (outcome === "written" || outcome === "already_finished") {
        await this.o.settlement.ack(message, log);
        return "failed";
      }
    } catch (finishErr) {
      if (isRetryable(finishErr)) throw finishErr;
    }
    await this.o.settlement.deadLetter(message, { code: "JOB_UNSTORABLE", message: reason }, log);
    return "failed";
  }

  private async conflict(held: HeldMessage, id: string, owner: string | undefined): Promise<Outcome> {
    const { message, log } = held;
    log.warn({ messageId: message.messageId }, "job id already used by another tenant: message dead-lettered");
    await this.o.settlement.deadLetter(message, { code: "JOB_ID_CONFLICT", message: `id ${id} belongs to ${owner === undefined ? "an earlier message" : "another tenant"}; this message was not run` }, log);
    return "conflict";
  }

  /** Free the lease (best effort: an unreleased one only delays the next claim until it expires), then hand back. */
  private async releaseAndHandBack(held: HeldMessage, jobId: string, reason: { code: string; message: string }, delaySeconds: number, freshCopy = false): Promise<void> {
    await this.o.store.release({ id: jobId, workerId: this.o.workerId, ...reason }).catch(() => undefined);
    await this.handBack(held, jobId, delaySeconds, freshCopy);
  }

  /**
   * Give back a message whose job did not finish here. When settlement sent a fresh copy (a last delivery), the spent
   * message's deliveries are forgotten in the store, or the lost-job sweep would record `dead` a job its copy carries.
   */
  private async handBack(held: HeldMessage, jobId: string, delaySeconds = 0, freshCopy = false): Promise<void> {
    if (await this.o.settlement.handBack(held.message, delaySeconds, { freshCopy, log: held.log })) {
      await this.o.store.resetDeliveries(jobId).catch((err: unknown) => held.log.warn({ err }, "could not reset the delivery count after a requeue"));
    }
  }

  private deadlineOf(job: Job): number | undefined {
    if (job.deadline !== undefined) return Date.parse(job.deadline);
    if (this.o.jobDefaultTtlSeconds > 0) return Date.parse(job.created_at) + this.o.jobDefaultTtlSeconds * 1000;
    return undefined;
  }

  /** What a finish needs to name this worker's job (its lease, tenant, request and trace, for a row it must create). */
  private owned(job: Job, held: HeldMessage) {
    return { id: job.id, workerId: this.o.workerId, tenant: job.tenant, request: JSON.stringify(job), createdAt: job.created_at, traceId: held.trace?.traceId };
  }

  /** Record a terminal outcome, then delete the message — unless another worker's lease decides the job now. */
  private async finishAndAck(held: HeldMessage, job: Job, o: { status: "failed" | "expired"; code: string; message: string }): Promise<Outcome> {
    const outcome = await this.o.store.finish({ ...this.owned(job, held), ...o });
    if (outcome === "conflict") return this.conflict(held, job.id, undefined);
    // `reason` is free text (a provider's error may quote the prompt): the logger masks personal data in it.
    if (outcome === "written") held.log[o.status === "failed" ? "warn" : "info"]({ status: o.status, code: o.code, reason: o.message }, `job ${o.status}`);
    if (outcome !== "lost_lease") await this.o.settlement.ack(held.message, held.log);
    return o.status;
  }
}

/**
 * Aborts when any parent aborts or the deadline passes. Listeners are removed on dispose, so a long-lived parent
 * (the worker's stop signal) keeps nothing of a finished job. Not AbortSignal.any(parents): it leaks on Node 20,
 * a development runtime still; on Node 24 it does not (scripts/abort-signal-retention.ts), so it may replace the
 * listeners here once Node 20 is dropped.
 */
class JobSignal {
  private readonly controller = new AbortController();
  private readonly deadline: CallDeadline | undefined;
  private readonly onAbort = () => this.controller.abort();

  constructor(
    private readonly parents: AbortSignal[],
    deadlineAt: number | undefined,
  ) {
    for (const p of parents) {
      if (p.aborted) this.controller.abort();
      else p.addEventListener("abort", this.onAbort, { once: true });
    }
    this.deadline = deadlineAt === undefined ? undefined : new CallDeadline(Math.max(1, deadlineAt - Date.now()), this.controller.signal);
  }

  get signal(): AbortSignal {
    return this.deadline?.signal ?? this.controller.signal;
  }

  dispose(): void {
    for (const p of this.parents) p.removeEventListener("abort", this.onAbort);
    this.deadline?.dispose();
  }
}

/** Tenant, request and created_at of a poison body, when it is a JSON object that has them (for its record). */
function rawFields(body: string): { tenant?: string; request?: string; createdAt?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return {};
  const r = raw as { tenant?: unknown; created_at?: unknown };
  const tenant = typeof r.tenant === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(r.tenant) ? r.tenant : undefined;
  const createdAt = typeof r.created_at === "string" && !Number.isNaN(Date.parse(r.created_at)) ? r.created_at : undefined;
  return { tenant, request: body, createdAt };
}

/** The record Postgres now holds, built locally so the hot path costs no extra read. */
function succeededRecord(job: Job, c: Completion, attempts: number, startedAt: Date, traceId: string | undefined): JobRecord {
  const nul = (c.text.match(/\u0000/g) ?? []).length;
  return {
    id: job.id,
    tenant: job.tenant,
    status: "succeeded",
    output: nul > 0 ? c.text.replace(/\u0000/g, "\uFFFD") : c.text,
    outputNulReplaced: nul,
    finishReason: c.finishReason,
    usage: { promptTokens: c.promptTokens, completionTokens: c.completionTokens },
    provider: c.provider,
    model: c.model,
    attempts,
    providerCalls: attempts,
    resultWrites: 1,
    error: undefined,
    createdAt: new Date(job.created_at),
    startedAt,
    finishedAt: new Date(),
    costUsd: c.costUsd,
    latencyMs: c.latencyMs,
    providerAttempts: c.attempts,
    ...(traceId === undefined ? {} : { traceId }),
  };
}

function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}
