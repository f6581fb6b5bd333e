/**
 * A batch line as a job. The job id is derived from the batch and the line number, `batch-<hex>:<line>`, so:
 * - a runner that dies mid-enqueue sends the same ids again, and the worker's first-owner rule runs each once;
 * - a batch's progress is one scan of the partial index jobs_batch_idx on split_part(id, ':', 1).
 * Job ids allow no `_`, so the batch's `batch_<hex>` becomes `batch-<hex>`.
 */
import { randomBytes } from "node:crypto";
import { v7 as uuidv7 } from "uuid";
import { encodeJob, jobSchemaV1, type JobInput } from "../../../shared/contract.ts";
import { ContractError } from "../../../shared/errors.ts";
import type { BodyJob, LineProblem } from "./openai-body.ts";

export function newBatchId(): string {
  return `batch_${uuidv7().replace(/-/g, "")}`;
}

export function newFileId(): string {
  return `file-${randomBytes(12).toString("hex")}`;
}

/** The prefix all of a batch's job ids share: what jobs_batch_idx indexes. */
export function batchJobKey(batchId: string): string {
  return `batch-${batchId.slice("batch_".length)}`;
}

export function batchJobId(batchId: string, line: number): string {
  return `${batchJobKey(batchId)}:${line}`;
}

export interface BatchJobSpec {
  batchId: string;
  line: number;
  tenant: string;
  customId: string;
  expiresAt: Date;
  body: BodyJob;
}

/** The job a line runs as: the batch's tenant, its expiry as the deadline (unstarted jobs expire with the batch). */
export function batchJobInput(s: BatchJobSpec): JobInput {
  return {
    ...s.body,
    id: batchJobId(s.batchId, s.line),
    tenant: s.tenant,
    deadline: s.expiresAt.toISOString(),
    metadata: { batch_id: s.batchId, custom_id: s.customId },
  };
}

/** A batch id of the real length, so checking a line before its batch exists measures the job it will be. */
const PLACEHOLDER_BATCH_ID = `batch_${"0".repeat(32)}`;

/**
 * Would this line's job pass the contract (the same check Producer.submit makes later)? Run at upload, before the
 * batch exists: same tenant, a batch id and deadline of the real length, so the size check is exact.
 */
export function contractProblem(tenant: string, line: number, customId: string, body: BodyJob): LineProblem | undefined {
  const input = batchJobInput({ batchId: PLACEHOLDER_BATCH_ID, line, tenant, customId, expiresAt: new Date(0), body });
  const parsed = jobSchemaV1.safeParse({ v: 1, created_at: new Date(0).toISOString(), ...input });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const message = parsed.error.issues.map((i) => `${openAiPath(i.path)}: ${i.message}`).join("; ");
    return { code: "invalid_request", message: message.replace(/\u0000/g, "\\u0000"), param: first ? openAiPath(first.path) : null };
  }
  try {
    encodeJob(parsed.data);
  } catch (err) {
    if (err instanceof ContractError) return { code: "request_too_large", message: err.message.replace(/^job \S+ is/, "the request is"), param: null };
    throw err;
  }
  return undefined;
}

/** Our contract's path as the OpenAI body names it: params.max_tokens → max_tokens, messages.0.content → messages[0].content. */
function openAiPath(path: readonly PropertyKey[]): string {
  const parts = path[0] === "params" ? path.slice(1) : path;
  return parts.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("") || "body";
}
