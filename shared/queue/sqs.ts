/**
 * The SQS adapter used by producer, worker and tools: batch calls that never fail wholesale for one bad entry,
 * retries of the entries worth retrying, long polls that stop on an AbortSignal, and one error classifier.
 * Works against real SQS and the emulator (docs/sqs-emulator.md lists where the emulator differs).
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import {
  type QueueAttributeName,
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type BatchResultErrorEntry,
  type Message,
  type MessageAttributeValue,
} from "@aws-sdk/client-sqs";
import { backoffMs, delay } from "../backoff.ts";
import { QueueError, isTransientAwsCode, isTransientAwsError, isTransientNetworkError } from "../errors.ts";

export interface QueueClientOptions {
  region: string;
  /** SQS-compatible endpoint (emulator, LocalStack, VPC endpoint). Always passed to the SDK when set. */
  endpoint?: string;
  /** Sockets per agent; every in-flight long poll holds one for up to 20 s. Default 64. */
  maxSockets?: number;
  /** Unset: the SDK's default chain, or dummy keys when `endpoint` is loopback (an emulator has no auth). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** TCP connect timeout, ms. Default 5000: a dead emulator or endpoint fails fast instead of hanging. */
  connectionTimeoutMs?: number;
  /** Retries of failed batch entries (and of whole batch calls) after the SDK's own retries. Default 4. */
  batchRetries?: number;
  /** Batch calls run at once by sendBatch/deleteBatch/changeVisibilityBatch. Default 8. */
  batchConcurrency?: number;
}

export interface ReceivedMessage {
  queueUrl: string;
  messageId: string;
  receiptHandle: string;
  body: string;
  /** Deliveries so far, this one included (ApproximateReceiveCount). */
  receiveCount: number;
  /** Epoch ms of the first delivery (ApproximateFirstReceiveTimestamp). */
  firstReceivedAt?: number;
  /** Epoch ms the message was sent (SentTimestamp). */
  sentAt?: number;
  /** String message attributes; other attribute types are not carried. */
  attributes?: Record<string, string>;
}

export interface BatchFailure {
  /** The caller's entry id. */
  id: string;
  /** SQS's code (`MessageTooLong`, `ReceiptHandleIsInvalid`, ...) or this adapter's for local checks. */
  code: string;
  message: string;
  /** True when the entry itself is wrong: retrying it cannot help. */
  senderFault: boolean;
}

export interface SendEntry {
  id: string;
  body: string;
  delaySeconds?: number;
  /** String message attributes (at most 10, SQS's limit). */
  attributes?: Record<string, string>;
}

export interface QueueSettings {
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  waitTimeSeconds: number;
  /** Retention of the DLQ; default 14 days, SQS's maximum, so dead letters outlive an incident. */
  dlqRetentionSeconds?: number;
}

/** SQS limits: entries per batch call, bytes per message and per whole batch. */
export const MAX_BATCH_ENTRIES = 10;
export const MAX_MESSAGE_BYTES = 1_048_576;
const DLQ_RETENTION_SECONDS = 1_209_600;
const SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp"] as const;

/**
 * SQS's own "try later" codes and this adapter's, beyond the AWS-wide ones (throttling, 5xx: isTransientAwsCode).
 * Retryable even when SQS flags them as the sender's fault.
 */
const SQS_RETRYABLE_CODES = new Set(["OverLimit", "QueueDeletedRecently", "QUEUE_UNREACHABLE", "QUEUE_ABORTED", "QUEUE_CREDENTIALS"]);
const isRetryableCode = (code: string) => SQS_RETRYABLE_CODES.has(code) || isTransientAwsCode(code);
/** Whole-call refusals caused by one entry's content (checked locally first; a server may be stricter). */
const CONTENT_CODES = new Set(["InvalidMessageContents", "InvalidParameterValue", "MessageTooLong", "BatchRequestTooLong", "InvalidAttributeValue", "InvalidAttributeName"]);
const QUERY_PREFIX = "AWS.SimpleQueueService.";
/** The legacy query-protocol codes some servers still put in `Code`, mapped to the JSON protocol's. */
const LEGACY_CODES: Record<string, string> = { NonExistentQueue: "QueueDoesNotExist" };

/**
 * Any error from an SQS call as a QueueError. The SDK surfaces codes inconsistently (a typed class with
 * `name` = code, or a generic SQSServiceException named `AWS.SimpleQueueService.<Code>` when the server sends
 * the query-compatible header), so the code is normalised here. Throttling, 5xx and network → retryable.
 */
export function classifySqsError(err: unknown): QueueError {
  if (err instanceof QueueError) return err;
  const e = (err ?? {}) as { name?: unknown; Code?: unknown; code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const message = typeof e.message === "string" && e.message !== "" ? e.message : String(err);
  const code = normaliseCode(err, e);
  const retryable = isRetryableCode(code) || isTransientAwsError(err);
  return new QueueError(code, `SQS ${code}: ${message}`, retryable, { cause: err, statusCode: status, provider: "sqs" });
}

function normaliseCode(err: unknown, e: { name?: unknown; Code?: unknown }): string {
  if (e.name === "AbortError") return "QUEUE_ABORTED";
  if (e.name === "CredentialsProviderError") return "QUEUE_CREDENTIALS";
  if (isTransientNetworkError(err)) return "QUEUE_UNREACHABLE";
  const name = typeof e.name === "string" ? e.name : "";
  // A typed SDK class is named for the JSON code; a generic one carries it in Code (query form) or name.
  const generic = name === "" || name === "Error" || name === "SQSServiceException" || name.startsWith(QUERY_PREFIX);
  const raw = !generic ? name : typeof e.Code === "string" && e.Code !== "" ? e.Code : name || "QUEUE_UNKNOWN";
  const stripped = raw.startsWith(QUERY_PREFIX) ? raw.slice(QUERY_PREFIX.length) : raw;
  return LEGACY_CODES[stripped] ?? stripped;
}

/** Bytes SQS counts for a message: body plus each attribute's name, type and value. */
export function messageBytes(entry: Pick<SendEntry, "body" | "attributes">): number {
  let bytes = Buffer.byteLength(entry.body, "utf8");
  for (const [name, value] of Object.entries(entry.attributes ?? {})) {
    bytes += Buffer.byteLength(name, "utf8") + "String".length + Buffer.byteLength(value, "utf8");
  }
  return bytes;
}

// SQS accepts #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF; anything else fails the whole request.
const INVALID_CHARS = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

type BatchOutcome = { failed: BatchFailure[] };
interface Indexed<T> { entry: T; callerId: string }

export class SqsQueue {
  readonly client: SQSClient;
  private readonly ownsClient: boolean;
  private readonly urls = new Map<string, Promise<string>>();
  private readonly retries: number;
  private readonly concurrency: number;

  constructor(opts: QueueClientOptions, client?: SQSClient) {
    this.retries = opts.batchRetries ?? 4;
    this.concurrency = opts.batchConcurrency ?? 8;
    this.ownsClient = client === undefined;
    this.client = client ?? new SQSClient({
      region: opts.region,
      ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
      ...credentialsFor(opts),
      // Resolve each command's middleware stack once, not on every send (~20 % of a receive's CPU here); nothing
      // in this project changes a stack after the first request.
      cacheMiddleware: true,
      requestHandler: {
        // keepAlive: a worker polls continuously; maxSockets bounds parallel long polls + batch calls.
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 }),
        connectionTimeout: opts.connectionTimeoutMs ?? 5_000,
      },
    });
  }

  /** Creates (or updates) the queue and its `<name>-dlq`, wiring the RedrivePolicy. Idempotent. */
  async ensureQueueWithDlq(name: string, o: QueueSettings): Promise<{ queueUrl: string; dlqUrl: string; dlqArn: string }> {
    const fifo = name.endsWith(".fifo");
    const dlqName = fifo ? `${name.slice(0, -5)}-dlq.fifo` : `${name}-dlq`;
    const dlqUrl = await this.createOrUpdate(dlqName, {
      MessageRetentionPeriod: String(o.dlqRetentionSeconds ?? DLQ_RETENTION_SECONDS),
      ...(fifo ? { FifoQueue: "true" } : {}),
    });
    const dlqArn = await this.attribute(dlqUrl, "QueueArn");
    if (dlqArn === undefined) throw new QueueError("QUEUE_NO_ARN", `queue ${dlqName} reported no QueueArn`, true);
    const queueUrl = await this.createOrUpdate(name, {
      VisibilityTimeout: String(o.visibilityTimeoutSeconds),
      ReceiveMessageWaitTimeSeconds: String(o.waitTimeSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: o.maxReceiveCount }),
      ...(fifo ? { FifoQueue: "true" } : {}),
    });
    return { queueUrl, dlqUrl, dlqArn };
  }

  /** The queue's URL by name (cached). */
  queueUrl(name: string): Promise<string> {
    let url = this.urls.get(name);
    if (url === undefined) {
      url = this.call(() => this.client.send(new GetQueueUrlCommand({ QueueName: name }))).then((o) => o.QueueUrl!);
      url.catch(() => this.urls.delete(name)); // do not cache a failure
      this.urls.set(name, url);
    }
    return url;
  }

  /** Resolves when the queue exists and we may read it (GetQueueAttributes); throws a QueueError otherwise. */
  async check(queueUrl: string, signal?: AbortSignal): Promise<void> {
    await this.attribute(queueUrl, "QueueArn", signal);
  }

  /** The DLQ named by the queue's RedrivePolicy, or undefined when it has none. */
  async deadLetterQueueUrl(queueUrl: string): Promise<string | undefined> {
    const policy = await this.attribute(queueUrl, "RedrivePolicy").catch((err: unknown) => {
      throw classifySqsError(err);
    });
    if (!policy) return undefined;
    const arn = (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn;
    const name = arn?.split(":").pop();
    return name ? this.queueUrl(name) : undefined;
  }

  /**
   * Sends in calls of ≤ 10 entries and ≤ 1 MiB, several calls at once. Entries too large or with characters
   * SQS refuses fail locally (senderFault) without sinking their batch; retryable failures are retried with
   * backoff. Resolves with what finally failed. Entries failed as QUEUE_ABORTED may or may not have been sent.
   */
  async sendBatch(queueUrl: string, entries: SendEntry[], signal?: AbortSignal): Promise<BatchOutcome> {
    const failed: BatchFailure[] = [];
    const valid: Indexed<SendEntry>[] = [];
    for (const entry of entries) {
      const problem = checkEntry(entry);
      if (problem) failed.push({ id: entry.id, ...problem, senderFault: true });
      else valid.push({ entry, callerId: entry.id });
    }
    const chunks = chunkBySize(valid);
    const outcomes = await this.runBounded(chunks, (chunk) =>
      this.batchWithRetry(chunk, signal, (batch) =>
        this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map(({ entry }, i) => ({
              Id: String(i),
              MessageBody: entry.body,
              DelaySeconds: entry.delaySeconds,
              MessageAttributes: toMessageAttributes(entry.attributes),
            })),
          }),
          { abortSignal: signal },
        ),
      ),
    );
    return { failed: failed.concat(...outcomes) };
  }

  /**
   * One ReceiveMessage call. Returns [] when `signal` aborts (or already has): shutdown must not look like an
   * error. Other failures throw a QueueError.
   */
  async receive(queueUrl: string, o: { maxMessages: number; waitTimeSeconds: number; visibilityTimeoutSeconds?: number; signal?: AbortSignal }): Promise<ReceivedMessage[]> {
    if (o.signal?.aborted) return [];
    try {
      const out = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(Math.max(o.maxMessages, 1), MAX_BATCH_ENTRIES),
          WaitTimeSeconds: o.waitTimeSeconds,
          VisibilityTimeout: o.visibilityTimeoutSeconds,
          MessageSystemAttributeNames: [...SYSTEM_ATTRIBUTES],
          // The legacy field too: some SQS-compatible servers (local-aws-sqs) honour only it. The three names, not
          // "All": every attribute returned is parsed by the SDK, ~10 % of a receive's CPU for the five unused.
          // (SQS's documentation lists these names for the legacy field; the SDK's type only knows queue attributes.)
          AttributeNames: [...SYSTEM_ATTRIBUTES] as string[] as QueueAttributeName[],
          MessageAttributeNames: ["All"],
        }),
        { abortSignal: o.signal },
      );
      return (out.Messages ?? []).map((m) => toReceived(queueUrl, m));
    } catch (err) {
      if (o.signal?.aborted) return [];
      throw classifySqsError(err);
    }
  }

  /** Deletes in batches; retries retryable failures. ReceiptHandleIsInvalid etc. come back as failures. */
  async deleteBatch(queueUrl: string, entries: { id: string; receiptHandle: string }[], signal?: AbortSignal): Promise<BatchOutcome> {
    const chunks = chunkByCount(entries.map((entry) => ({ entry, callerId: entry.id })));
    const outcomes = await this.runBounded(chunks, (chunk) =>
      this.batchWithRetry(chunk, signal, (batch) =>
        this.client.send(
          new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map(({ entry }, i) => ({ Id: String(i), ReceiptHandle: entry.receiptHandle })) }),
          { abortSignal: signal },
        ),
      ),
    );
    return { failed: outcomes.flat() };
  }

  /** Sets each message's visibility (0 = hand back now; SQS caps the total at 12 h from first receive). */
  async changeVisibilityBatch(
    queueUrl: string,
    entries: { id: string; receiptHandle: string; visibilityTimeoutSeconds: number }[],
    signal?: AbortSignal,
  ): Promise<BatchOutcome> {
    const chunks = chunkByCount(entries.map((entry) => ({ entry, callerId: entry.id })));
    const outcomes = await this.runBounded(chunks, (chunk) =>
      this.batchWithRetry(chunk, signal, (batch) =>
        this.client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map(({ entry }, i) => ({ Id: String(i), ReceiptHandle: entry.receiptHandle, VisibilityTimeout: entry.visibilityTimeoutSeconds })),
          }),
          { abortSignal: signal },
        ),
      ),
    );
    return { failed: outcomes.flat() };
  }

  /** Approximate counts (SQS: eventually consistent, ~1 min behind under load). */
  async depth(queueUrl: string, signal?: AbortSignal): Promise<{ visible: number; inFlight: number; delayed: number }> {
    const out = await this.call(() =>
      this.client.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        }),
        { abortSignal: signal },
      ),
    );
    const a = out.Attributes ?? {};
    return {
      visible: Number(a.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  }

  /** Drops every message (SQS allows one purge per queue per 60 s: PurgeQueueInProgress otherwise). */
  async purge(queueUrl: string): Promise<void> {
    await this.call(() => this.client.send(new PurgeQueueCommand({ QueueUrl: queueUrl })));
  }

  async deleteQueue(queueUrl: string): Promise<void> {
    await this.call(() => this.client.send(new DeleteQueueCommand({ QueueUrl: queueUrl })));
    for (const [name, url] of this.urls) if ((await url.catch(() => undefined)) === queueUrl) this.urls.delete(name);
  }

  /**
   * Moves messages from a DLQ back to `sourceUrl` (body and string attributes; the receive count restarts).
   * A message leaves the DLQ only after its send succeeded; ones the filter skips, or whose send failed, are
   * made visible again at the end. Returns how many moved.
   */
  async redrive(dlqUrl: string, sourceUrl: string, o: { max?: number; filter?: (m: ReceivedMessage) => boolean; signal?: AbortSignal } = {}): Promise<number> {
    const max = o.max ?? Number.POSITIVE_INFINITY;
    const held: ReceivedMessage[] = []; // received but not moved: released at the end
    const seen = new Set<string>();
    let moved = 0;
    try {
      while (moved < max && !o.signal?.aborted) {
        // Hold long enough that a skipped message does not come back during this run.
        const got = await this.receive(dlqUrl, { maxMessages: Math.min(MAX_BATCH_ENTRIES, max - moved), waitTimeSeconds: 1, visibilityTimeoutSeconds: 300, signal: o.signal });
        const fresh = got.filter((m) => !seen.has(m.messageId));
        if (fresh.length === 0) {
          held.push(...got);
          break;
        }
        for (const m of got) seen.add(m.messageId);
        const chosen = fresh.filter((m) => o.filter?.(m) ?? true);
        held.push(...got.filter((m) => !chosen.includes(m)));
        if (chosen.length === 0) continue;
        const { failed } = await this.sendBatch(sourceUrl, chosen.map((m) => ({ id: m.messageId, body: m.body, attributes: m.attributes })), o.signal);
        const failedIds = new Set(failed.map((f) => f.id));
        const sent = chosen.filter((m) => !failedIds.has(m.messageId));
        held.push(...chosen.filter((m) => failedIds.has(m.messageId)));
        // A failed delete leaves a copy in the DLQ: a duplicate, never a loss.
        await this.deleteBatch(dlqUrl, sent.map((m) => ({ id: m.messageId, receiptHandle: m.receiptHandle })));
        moved += sent.length;
      }
    } finally {
      if (held.length > 0) {
        await this.changeVisibilityBatch(dlqUrl, held.map((m) => ({ id: m.messageId, receiptHandle: m.receiptHandle, visibilityTimeoutSeconds: 0 })));
      }
    }
    return moved;
  }

  /** Destroys the client's sockets (ends open long polls). Only when this adapter created the client. */
  close(): void {
    if (this.ownsClient) this.client.destroy();
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw classifySqsError(err);
    }
  }

  private async attribute(queueUrl: string, name: "QueueArn" | "RedrivePolicy", signal?: AbortSignal): Promise<string | undefined> {
    const out = await this.call(() => this.client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: [name] }), { abortSignal: signal }));
    return out.Attributes?.[name];
  }

  private async createOrUpdate(name: string, attributes: Record<string, string>): Promise<string> {
    try {
      const out = await this.client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      return out.QueueUrl!;
    } catch (err) {
      const e = classifySqsError(err);
      // Exists with other attributes (AWS: QueueAlreadyExists; fauxqs: QueueNameExists): update it in place.
      if (e.code !== "QueueAlreadyExists" && e.code !== "QueueNameExists") throw e;
      const url = await this.queueUrl(name);
      const { FifoQueue: _immutable, ...settable } = attributes;
      await this.call(() => this.client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: settable })));
      return url;
    }
  }

  /** Runs `work` over `items` with at most `this.concurrency` at once; results in input order. */
  private async runBounded<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<R[]> {
    const results: R[] = new Array(items.length);
    let next = 0;
    const lane = async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, lane));
    return results;
  }

  /**
   * One batch call, then again for the entries that failed retryably, with backoff, up to `retries` times.
   * A whole-call failure counts as every entry failing with the call's code. Ids sent to SQS are positions
   * in the batch, so any caller id (duplicates, long, odd characters) is safe.
   */
  private async batchWithRetry<T>(
    chunk: Indexed<T>[],
    signal: AbortSignal | undefined,
    call: (batch: Indexed<T>[]) => Promise<{ Failed?: BatchResultErrorEntry[] }>,
  ): Promise<BatchFailure[]> {
    let pending = chunk;
    let final: BatchFailure[] = [];
    for (let attempt = 0; pending.length > 0; attempt++) {
      const failures = await this.attemptBatch(pending, signal, call);
      final = failures.filter((f) => !f.retry).map((f) => f.failure);
      const retry = failures.filter((f) => f.retry);
      if (retry.length === 0) break;
      if (attempt >= this.retries || signal?.aborted) {
        final.push(...retry.map((f) => f.failure));
        break;
      }
      await delay(backoffMs(attempt, 100, 5_000), signal);
      pending = retry.map((f) => f.item);
      if (signal?.aborted) {
        final.push(...retry.map((f) => ({ ...f.failure, code: "QUEUE_ABORTED", message: "aborted before retry" })));
        break;
      }
    }
    return final;
  }

  private async attemptBatch<T>(
    batch: Indexed<T>[],
    signal: AbortSignal | undefined,
    call: (batch: Indexed<T>[]) => Promise<{ Failed?: BatchResultErrorEntry[] }>,
  ): Promise<{ item: Indexed<T>; retry: boolean; failure: BatchFailure }[]> {
    try {
      const out = await call(batch);
      return (out.Failed ?? []).flatMap((f) => {
        const item = batch[Number(f.Id)];
        if (item === undefined) return [];
        const code = f.Code ?? "QUEUE_UNKNOWN";
        const retry = !f.SenderFault || isRetryableCode(code);
        return [{ item, retry, failure: { id: item.callerId, code, message: f.Message ?? code, senderFault: f.SenderFault ?? false } }];
      });
    } catch (err) {
      const e = signal?.aborted ? new QueueError("QUEUE_ABORTED", "aborted", true, { cause: err }) : classifySqsError(err);
      if (batch.length > 1 && CONTENT_CODES.has(e.code)) {
        // One entry the server refuses sinks the whole call: resend one by one so only that entry fails.
        const single = await Promise.all(batch.map((item) => this.attemptBatch([item], signal, call)));
        return single.flat();
      }
      return batch.map((item) => ({ item, retry: e.retryable && !signal?.aborted, failure: { id: item.callerId, code: e.code, message: e.message, senderFault: !e.retryable } }));
    }
  }
}

function checkEntry(entry: SendEntry): { code: string; message: string } | undefined {
  const bytes = messageBytes(entry);
  if (bytes > MAX_MESSAGE_BYTES) return { code: "MessageTooLong", message: `message is ${bytes} bytes; SQS allows ${MAX_MESSAGE_BYTES}` };
  const attributes = Object.keys(entry.attributes ?? {}).length;
  if (attributes > 10) return { code: "InvalidParameterValue", message: `${attributes} message attributes; SQS allows 10` };
  if (INVALID_CHARS.test(entry.body)) return { code: "InvalidMessageContents", message: "body contains characters SQS does not accept" };
  return undefined;
}

/** Greedy chunks of ≤ 10 entries whose total stays within SQS's 1 MiB per-batch limit. */
function chunkBySize(items: Indexed<SendEntry>[]): Indexed<SendEntry>[][] {
  const chunks: Indexed<SendEntry>[][] = [];
  let current: Indexed<SendEntry>[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = messageBytes(item.entry);
    if (current.length === MAX_BATCH_ENTRIES || (current.length > 0 && bytes + size > MAX_MESSAGE_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function chunkByCount<T>(items: T[]): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += MAX_BATCH_ENTRIES) chunks.push(items.slice(i, i + MAX_BATCH_ENTRIES));
  return chunks;
}

function toMessageAttributes(attributes: Record<string, string> | undefined): Record<string, MessageAttributeValue> | undefined {
  if (attributes === undefined || Object.keys(attributes).length === 0) return undefined;
  return Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { DataType: "String", StringValue: v }]));
}

function toReceived(queueUrl: string, m: Message): ReceivedMessage {
  const a = m.Attributes ?? {};
  const attributes = Object.entries(m.MessageAttributes ?? {}).filter(([, v]) => v.StringValue !== undefined);
  return {
    queueUrl,
    messageId: m.MessageId ?? "",
    receiptHandle: m.ReceiptHandle ?? "",
    body: m.Body ?? "",
    receiveCount: Number(a.ApproximateReceiveCount ?? 1),
    firstReceivedAt: optionalNumber(a.ApproximateFirstReceiveTimestamp),
    sentAt: optionalNumber(a.SentTimestamp),
    ...(attributes.length > 0 ? { attributes: Object.fromEntries(attributes.map(([k, v]) => [k, v.StringValue!])) } : {}),
  };
}

function optionalNumber(value: string | undefined): number | undefined {
  const n = Number(value);
  return value === undefined || !Number.isFinite(n) ? undefined : n;
}

function credentialsFor(opts: QueueClientOptions): { credentials?: QueueClientOptions["credentials"] } {
  if (opts.credentials) return { credentials: opts.credentials };
  return isLoopback(opts.endpoint) ? { credentials: { accessKeyId: "emulator", secretAccessKey: "emulator" } } : {};
}

function isLoopback(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false;
  try {
    const host = new URL(endpoint).hostname;
    return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host.endsWith(".localhost");
  } catch {
    return false;
  }
}
