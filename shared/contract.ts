/**
 * The queue message contract: a public, versioned format. Producers in other languages use the JSON Schema
 * exported from this file (`make schema` writes shared/job.schema.json). Additive changes keep `v: 1`;
 * anything else is a new version the worker must learn before producers send it.
 */
import { z } from "zod";
import { v7 as uuidv7 } from "uuid";
import { ContractError } from "./errors.ts";

export const CONTRACT_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [1];
/** Largest body we accept. 256 KiB fits every SQS queue (the classic limit) and one 64 KiB-billed chunk × 4. */
export const MAX_JOB_BYTES = 256 * 1024;

/**
 * No string in a job may contain U+0000: Postgres refuses it in text (22021) and jsonb (22P05), so such a job could
 * never be recorded. Every other character is legal (emoji, tabs, other control characters, bidi marks). The
 * pattern is exported as-is in the JSON Schema (ECMA-262 regex, which JSON Schema patterns are).
 */
const NO_NUL = /^[^\u0000]*$/;
const NO_NUL_MESSAGE = "must not contain U+0000 (NUL)";
/** A string the store can hold. */
const text = () => z.string().regex(NO_NUL, NO_NUL_MESSAGE);
/** Most metadata pairs a job may carry. */
export const MAX_METADATA_KEYS = 16;

/** Client-supplied ids: printable, URL-safe, at most 128 chars. Generated ids are UUIDv7 (time-sortable, 74 random bits). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const TENANT_PATTERN = /^[A-Za-z0-9._-]+$/;
const jobId = z.string().regex(JOB_ID_PATTERN, "id must be 1-128 chars of [A-Za-z0-9._:-], starting alphanumeric");

const chatMessage = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: text().min(1, "message content must not be empty"),
});

const samplingParams = z.strictObject({
  max_tokens: z.number().int().min(1).max(32768).optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  stop: z.array(text().min(1)).max(4).optional(),
  seed: z.number().int().optional(),
});

/** The fields alone, for schemas built from them (the Results API's input); `jobSchemaV1` adds the cross-field rule. */
export const jobFieldsV1 = z.strictObject({
  v: z.literal(1),
  id: jobId,
  tenant: z.string().min(1).max(64).regex(TENANT_PATTERN, "tenant must be [A-Za-z0-9._-]"),
  model: text().min(1).max(256).optional(),
  messages: z.array(chatMessage).min(1).max(256).optional(),
  prompt: text().min(1).optional(),
  params: samplingParams.default({}),
  risk: z.enum(["low", "medium", "high"]).default("low"),
  metadata: z
    .record(text().max(64), text().max(1024))
    .refine((m) => Object.keys(m).length <= MAX_METADATA_KEYS, { message: `at most ${MAX_METADATA_KEYS} metadata keys` })
    .meta({ maxProperties: MAX_METADATA_KEYS })
    .optional(),
  created_at: z.iso.datetime({ offset: true }),
  /** Absolute deadline; a job received after it is recorded `expired` without calling a provider. */
  deadline: z.iso.datetime({ offset: true }).optional(),
});

/** Exactly one of `messages` (chat) or `prompt` (completion); a message to SQS or a job input alike. */
export const oneInputKind = (j: { messages?: unknown; prompt?: unknown }): boolean => (j.messages === undefined) !== (j.prompt === undefined);
export const ONE_INPUT_KIND_MESSAGE = "exactly one of `messages` (chat) or `prompt` (completion) is required";

export const jobSchemaV1 = jobFieldsV1
  .refine(oneInputKind, { message: ONE_INPUT_KIND_MESSAGE, path: ["messages"] })
  // The refine above is code; this is the same rule for the exported JSON Schema (`.meta` keys are copied into it).
  .meta({ oneOf: [{ required: ["messages"] }, { required: ["prompt"] }] });

export type Job = z.output<typeof jobSchemaV1>;
/** What a producer passes in: id, v and created_at are filled in when absent. */
export type JobInput = Omit<z.input<typeof jobSchemaV1>, "v" | "id" | "created_at"> & {
  id?: string;
  created_at?: string;
};

export function newJobId(): string {
  return uuidv7();
}

/** Build and validate a job from producer input; throws ContractError with every problem listed. */
export function buildJob(input: JobInput, now: Date = new Date()): Job {
  const candidate = { v: CONTRACT_VERSION, id: input.id ?? newJobId(), created_at: now.toISOString(), ...input };
  if (candidate.id === undefined) candidate.id = newJobId();
  const job = validate(candidate, candidate.id);
  encodeJob(job); // size check
  return job;
}

/** Serialise a job for the queue; refuses bodies over MAX_JOB_BYTES. */
export function encodeJob(job: Job): string {
  const body = JSON.stringify(job);
  const bytes = Buffer.byteLength(body, "utf8");
  if (bytes > MAX_JOB_BYTES) {
    throw new ContractError("JOB_TOO_LARGE", `job ${job.id} is ${bytes} bytes; the limit is ${MAX_JOB_BYTES}`, job.id);
  }
  return body;
}

/**
 * Parse a queue body. Every failure is a terminal ContractError carrying the id when one can be recovered,
 * so the worker can record the failure against the right request.
 */
export function decodeJob(body: string): Job {
  if (Buffer.byteLength(body, "utf8") > MAX_JOB_BYTES) {
    throw new ContractError("JOB_TOO_LARGE", `message body exceeds ${MAX_JOB_BYTES} bytes`, recoverId(body));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    throw new ContractError("JOB_NOT_JSON", printable(`body is not JSON: ${(err as Error).message}`), undefined, { cause: err });
  }
  const id = recoverIdFrom(raw);
  const v = (raw as { v?: unknown } | null)?.v;
  if (typeof raw === "object" && raw !== null && typeof v === "number" && !SUPPORTED_VERSIONS.includes(v)) {
    throw new ContractError("JOB_UNKNOWN_VERSION", `unknown contract version v=${v}; this worker supports ${SUPPORTED_VERSIONS.join(", ")}`, id);
  }
  return validate(raw, id);
}

function validate(raw: unknown, id: string | undefined): Job {
  const parsed = jobSchemaV1.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new ContractError("JOB_INVALID", `invalid job: ${parsed.error.issues.map(describeIssue).join("; ")}`, id);
}

/** "path: message"; a bad record key is reported by its own problem, not zod's generic "Invalid key in record". */
function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join(".") : "(root)";
  const inner = issue.code === "invalid_key" ? issue.issues[0] : undefined;
  return printable(inner ? `${where} (key): ${inner.message}` : `${where}: ${issue.message}`);
}

/**
 * Refusal reasons are recorded in Postgres and logged: a U+0000 copied from the body (a key in a path, a parser's
 * excerpt) is written as the six characters `\u0000` instead.
 */
function printable(message: string): string {
  return message.replace(/\u0000/g, "\\u0000");
}

/** The request id a queue body names, if it is JSON with a well-formed `id` (for tools reading raw messages). */
export function jobIdOf(body: string): string | undefined {
  try {
    return recoverIdFrom(JSON.parse(body));
  } catch {
    return undefined;
  }
}

/** The tenant a queue body names, if it is JSON with a well-formed `tenant` (the DLQ tool scopes a reopen by it). */
export function tenantOf(body: string): string | undefined {
  try {
    const tenant = (JSON.parse(body) as { tenant?: unknown } | null)?.tenant;
    return typeof tenant === "string" && TENANT_PATTERN.test(tenant) ? tenant : undefined;
  } catch {
    return undefined;
  }
}

function recoverIdFrom(raw: unknown): string | undefined {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === "string" && JOB_ID_PATTERN.test(id) ? id : undefined;
}

function recoverId(body: string): string | undefined {
  const m = /"id"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._:-]{0,127})"/.exec(body.slice(0, 4096));
  return m?.[1];
}

/** The JSON Schema for producers in other languages. */
export function jobJsonSchema(): unknown {
  return z.toJSONSchema(jobSchemaV1, { io: "input", unrepresentable: "any" });
}
