/**
 * The producer library: validate jobs against the public contract and put them on the queue in batches of 10.
 * Invalid or over-size jobs are refused before anything is sent, each with a precise reason. Every message carries
 * a W3C `traceparent` message attribute (shared/trace.ts) beside the body, whose contract it leaves unchanged.
 */
import { buildJob, encodeJob, type Job, type JobInput } from "../shared/contract.ts";
import { ContractError, QueueError } from "../shared/errors.ts";
import type { SqsQueue } from "../shared/queue/sqs.ts";
import { TRACEPARENT, childSpan, formatTraceparent, newTrace, parseTraceparent } from "../shared/trace.ts";

export interface SubmitFailure {
  /** Position in the input list. */
  index: number;
  id?: string;
  code: string;
  message: string;
}

export interface SubmitManyResult {
  /** Ids of the accepted jobs, in input order (refused ones are absent). */
  ids: string[];
  jobs: Job[];
  failed: SubmitFailure[];
}

export interface SubmitOptions {
  signal?: AbortSignal;
  /**
   * The caller's trace (a W3C traceparent): every job of this call joins it, each message with its own span id.
   * Unset, or not a valid traceparent: each job starts a trace of its own.
   */
  traceparent?: string;
}

export interface ProducerOptions {
  queue: SqsQueue;
  queueUrl: string;
}

export class Producer {
  constructor(private readonly o: ProducerOptions) {}

  /** Submit one job; returns its request id. Throws ContractError (refused) or QueueError (not sent). */
  async submit(input: JobInput, o: SubmitOptions = {}): Promise<string> {
    const { ids, failed } = await this.submitMany([input], o);
    const failure = failed[0];
    if (failure !== undefined) {
      throw failure.code.startsWith("JOB_")
        ? new ContractError(failure.code as ContractError["code"], failure.message, failure.id)
        : new QueueError(failure.code, failure.message, false);
    }
    return ids[0]!;
  }

  /** Validate every job, send the valid ones, report each refusal or send failure by index. */
  async submitMany(inputs: JobInput[], o: SubmitOptions = {}): Promise<SubmitManyResult> {
    const failed: SubmitFailure[] = [];
    const accepted: { index: number; job: Job; body: string }[] = [];
    const now = new Date();
    inputs.forEach((input, index) => {
      try {
        const job = buildJob(input, now);
        accepted.push({ index, job, body: encodeJob(job) });
      } catch (err) {
        if (!(err instanceof ContractError)) throw err;
        failed.push({ index, id: input.id, code: err.code, message: err.message });
      }
    });
    const duplicateIds = findDuplicates(accepted.map((a) => a.job.id));
    const toSend = accepted.filter((a) => {
      if (!duplicateIds.has(a.job.id)) return true;
      failed.push({ index: a.index, id: a.job.id, code: "JOB_DUPLICATE_ID", message: `id ${a.job.id} appears more than once in this submission` });
      return false;
    });
    const caller = parseTraceparent(o.traceparent);
    const trace = () => ({ [TRACEPARENT]: formatTraceparent(caller === undefined ? newTrace() : childSpan(caller)) });
    const entries = toSend.map((a) => ({ id: String(a.index), body: a.body, attributes: trace() }));
    const result = toSend.length === 0 ? { failed: [] } : await this.o.queue.sendBatch(this.o.queueUrl, entries, o.signal);
    const sendFailed = new Map(result.failed.map((f) => [f.id, f]));
    const sent = toSend.filter((a) => {
      const f = sendFailed.get(String(a.index));
      if (f === undefined) return true;
      failed.push({ index: a.index, id: a.job.id, code: f.code, message: f.message });
      return false;
    });
    failed.sort((a, b) => a.index - b.index);
    return { ids: sent.map((a) => a.job.id), jobs: sent.map((a) => a.job), failed };
  }
}

function findDuplicates(ids: string[]): Set<string> {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const id of ids) (seen.has(id) ? dup : seen).add(id);
  return dup;
}
