/**
 * One message, start to end: decode → expiry check → claim (Postgres lease) → provider → persist → ack.
 * The rule that keeps jobs safe: a message is deleted only after its outcome is durable in Postgres; every
 * other path leaves it (or hands it back) to SQS for redelivery.
 */
import type pLimit from "p-limit";
import { decodeJob, type Job } from "../shared/contract.ts";
import { ContractError, errorCode, FleetError, isRetryable } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { CallDeadline, type Completion, type Provider } from "../shared/providers/provider.ts";
import type { JobRecord } from "../shared/store/job-record.ts";
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";
import type { Acker } from "./acker.ts";
import type { DurableStore } from "./durable-store.ts";
import type { HeldMessage } from "./heartbeat.ts";
import type { PoisonSink } from "./poison.ts";

export interface ProcessorOptions {
  workerId: string;
  queue: SqsQueue;
  store: DurableStore;
  /** Hot-path publish (Redis); never fails a job. */
  publish?: (record: JobRecord) => void;
  provider: Provider;
  acker: Acker;
  poison: PoisonSink;
  limit: ReturnType<typeof pLimit>;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  jobDefaultTtlSeconds: number;
  log: Logger;
  /** Counts provider calls in flight (adaptive concurrency reads it). */
  onProviderCall: (delta: 1 | -1) => void;
  /** Told of each provider call's result (the circuit breaker). */
  onProviderResult: (ok: boolean) => void;
}

export type Outcome = "succeeded" | "failed" | "expired" | "dead" | "poison" | "duplicate" | "leased" | "retry" | "released";

export class Processor {
  /** Job ids this worker is running now. */
  private readonly active = new Set<string>();

  constructor(private readonly o: ProcessorOptions) {}

  /** Never throws: every failure ends in a recorded outcome or a message left for redelivery. */
  async process(held: HeldMessage, stop: AbortSignal, draining: AbortSignal): Promise<Outcome> {
    const { message } = held;
    let job: Job;
    try {
      job = decodeJob(message.body);
    } catch (err) {
      return this.poison(message, err);
    }
    held.jobId = job.id;
    const deadlineAt = this.deadlineOf(job);
    if (deadlineAt !== undefined && Date.now() >= deadlineAt) {
      await this.finishAndAck(message, { id: job.id, status: "expired", code: "JOB_EXPIRED", message: `deadline ${new Date(deadlineAt).toISOString()} passed before the job started`, job, workerId: this.o.workerId });
      return "expired";
    }
    held.deadlineAt = deadlineAt;
    if (draining.aborted) {
      // Not started yet and we are shutting down: hand it straight back to the queue.
      await this.handBack(message);
      return "released";
    }
    if (this.active.has(job.id)) {
      // A redelivery (or duplicate send) of a job this worker is running right now: its lease is ours, so
      // the store would let us claim it again. Check back when the running one should be done.
      await this.setVisibility(message, this.o.visibilityTimeoutSeconds);
      return "leased";
    }
    const claim = await this.o.store.claim({ job, workerId: this.o.workerId, leaseMs: this.o.visibilityTimeoutSeconds * 1000, messageId: message.messageId });
    if (claim.kind === "finished") {
      await this.o.acker.ack(message);
      return "duplicate";
    }
    if (claim.kind === "leased") {
      // Another live worker runs this job: come back when its lease would have run out, to find it finished.
      const wait = Math.ceil((claim.expiresAt.getTime() - Date.now()) / 1000) + 1;
      await this.setVisibility(message, Math.max(1, Math.min(this.o.visibilityTimeoutSeconds, wait)));
      return "leased";
    }
    this.active.add(job.id);
    try {
      return await this.run(job, held, deadlineAt, stop, claim.attempts);
    } finally {
      this.active.delete(job.id);
    }
  }

  private async run(job: Job, held: HeldMessage, deadlineAt: number | undefined, stop: AbortSignal, attempts: number): Promise<Outcome> {
    const { message } = held;
    const startedAt = new Date();
    // Not AbortSignal.any: on Node 20 it keeps every combined signal alive as long as `stop` lives.
    const deadline = deadlineAt === undefined ? undefined : new CallDeadline(Math.max(1, deadlineAt - Date.now()), stop);
    const signal = deadline?.signal ?? stop;
    try {
      const completion = await this.o.limit(async () => {
        signal.throwIfAborted();
        this.o.onProviderCall(1);
        this.o.store.noteProviderCall(job.id);
        try {
          const completion = await this.o.provider.generate({ messages: job.messages, prompt: job.prompt, model: job.model, params: job.params }, signal);
          this.o.onProviderResult(true);
          return completion;
        } catch (err) {
          // Only backend trouble counts against the circuit: not our own aborts, not a job's bad request.
          if (!signal.aborted && isRetryable(err)) this.o.onProviderResult(false);
          throw err;
        } finally {
          this.o.onProviderCall(-1);
        }
      });
      const outcome = await this.o.store.complete({
        id: job.id,
        workerId: this.o.workerId,
        output: completion.text,
        finishReason: completion.finishReason,
        promptTokens: completion.promptTokens,
        completionTokens: completion.completionTokens,
        provider: completion.provider,
        model: completion.model,
      });
      if (outcome === "lost_lease") {
        // Our lease ran out (e.g. during a store outage) and another worker holds the job now: its outcome
        // decides. Keep the message; if that worker dies too, the message comes back to find the job claimable.
        return "leased";
      }
      if (outcome === "written") this.o.publish?.(succeededRecord(job, completion, attempts, startedAt));
      await this.o.acker.ack(message);
      return "succeeded";
    } catch (err) {
      return this.onFailure(job, held, err, stop, deadlineAt);
    } finally {
      deadline?.dispose();
    }
  }

  private async onFailure(job: Job, held: HeldMessage, err: unknown, stop: AbortSignal, deadlineAt?: number): Promise<Outcome> {
    const { message } = held;
    if (stop.aborted) {
      await this.o.store.release({ id: job.id, workerId: this.o.workerId, code: "WORKER_STOPPED", message: "worker stopped before the job finished" }).catch(() => undefined);
      await this.handBack(message);
      return "released";
    }
    if (deadlineAt !== undefined && Date.now() >= deadlineAt) {
      await this.finishAndAck(message, { id: job.id, status: "expired", code: "JOB_EXPIRED", message: "deadline passed while the job ran", workerId: this.o.workerId, job });
      return "expired";
    }
    const code = errorCode(err);
    const text = describe(err);
    if (!isRetryable(err)) {
      await this.finishAndAck(message, { id: job.id, status: "failed", code, message: text, workerId: this.o.workerId, job });
      return "failed";
    }
    if (message.receiveCount >= this.o.maxReceiveCount) {
      // The last delivery SQS allows: record why, then let the redrive policy move the message to the DLQ.
      await this.o.store.finish({ id: job.id, status: "dead", code, message: `gave up after ${message.receiveCount} deliveries: ${text}`, workerId: this.o.workerId, job });
      await this.setVisibility(message, 0);
      return "dead";
    }
    await this.o.store.release({ id: job.id, workerId: this.o.workerId, code, message: text });
    const retryAfter = err instanceof FleetError && err.retryAfterMs !== undefined ? Math.ceil(err.retryAfterMs / 1000) : 0;
    await this.setVisibility(message, Math.min(this.o.visibilityTimeoutSeconds, Math.max(retryAfter, 2 ** message.receiveCount)));
    return "retry";
  }

  /** decodeJob throws only ContractError; anything else is a bug and propagates. */
  private async poison(message: ReceivedMessage, err: unknown): Promise<Outcome> {
    if (!(err instanceof ContractError)) throw err;
    this.o.log.warn({ messageId: message.messageId, code: err.code, jobId: err.jobId, reason: err.message }, "poison message");
    if (err.jobId !== undefined) {
      await this.o.store.finish({ id: err.jobId, status: "failed", code: err.code, message: err.message, workerId: this.o.workerId });
    } else {
      await this.o.poison.deadLetter(message, err);
    }
    await this.o.acker.ack(message);
    return "poison";
  }

  private deadlineOf(job: Job): number | undefined {
    if (job.deadline !== undefined) return Date.parse(job.deadline);
    if (this.o.jobDefaultTtlSeconds > 0) return Date.parse(job.created_at) + this.o.jobDefaultTtlSeconds * 1000;
    return undefined;
  }

  /** Record a terminal failure, then delete the message — unless another worker's lease decides the job now. */
  private async finishAndAck(message: ReceivedMessage, item: Parameters<DurableStore["finish"]>[0]): Promise<void> {
    const outcome = await this.o.store.finish(item);
    if (outcome !== "lost_lease") await this.o.acker.ack(message);
  }

  /** Make the message visible again at once, for another worker. */
  handBack(message: ReceivedMessage): Promise<void> {
    return this.setVisibility(message, 0);
  }

  private async setVisibility(message: ReceivedMessage, seconds: number): Promise<void> {
    try {
      await this.o.queue.changeVisibilityBatch(message.queueUrl, [{ id: "0", receiptHandle: message.receiptHandle, visibilityTimeoutSeconds: seconds }]);
    } catch (err) {
      // Not fatal: the message reappears when its current visibility runs out.
      this.o.log.warn({ err, messageId: message.messageId }, "visibility change failed");
    }
  }
}

/** The record Postgres now holds, built locally so the hot path costs no extra read. */
function succeededRecord(job: Job, c: Completion, attempts: number, startedAt: Date): JobRecord {
  return {
    id: job.id,
    tenant: job.tenant,
    status: "succeeded",
    output: c.text,
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
  };
}

function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}
