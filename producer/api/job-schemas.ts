/**
 * The jobs resource over HTTP, as zod schemas (validation, serialisation and the OpenAPI document alike). A job
 * input is the queue contract's job (shared/contract.ts) without what the API fills in (`v`, `created_at`, the
 * tenant from the key) and with `webhook_url`, which the API keeps for itself: the queue message is unchanged.
 */
import { z } from "zod";
import { JOB_ID_PATTERN, jobFieldsV1, ONE_INPUT_KIND_MESSAGE, oneInputKind } from "../../shared/contract.ts";
import { JOB_STATUSES, type JobRecord } from "../../shared/store/job-record.ts";

/** Jobs in one POST at most; each is also bounded by the contract's 256 KiB, and the body by API_BODY_LIMIT_BYTES. */
export const MAX_JOBS_PER_REQUEST = 1_000;

export const jobInputSchema = jobFieldsV1
  .omit({ v: true, created_at: true })
  .extend({
    id: jobFieldsV1.shape.id.optional(),
    /** Accepted only when it names the key's own tenant (jobs written for the queue contract can be posted as they are). */
    tenant: jobFieldsV1.shape.tenant.optional(),
    /** POSTed, signed, when the job ends (README "Webhooks"). */
    webhook_url: z
      .url({ protocol: /^https?$/, message: "webhook_url must be an http(s) URL" })
      .max(2048)
      .optional(),
  })
  .refine(oneInputKind, { message: ONE_INPUT_KIND_MESSAGE, path: ["messages"] });
export type JobInputBody = z.output<typeof jobInputSchema>;

export const submitBodySchema = z.union([jobInputSchema, z.array(jobInputSchema).min(1).max(MAX_JOBS_PER_REQUEST)]);

const queuedJob = z.object({ id: z.string(), object: z.literal("job"), status: z.literal("queued") });
export const submitOneResponse = queuedJob;
export const submitManyResponse = z.object({
  object: z.literal("list"),
  /** The jobs accepted, in input order. */
  data: z.array(queuedJob.extend({ index: z.number().int() })),
  /** The jobs refused or not sent, by position in the input. */
  errors: z.array(z.object({ index: z.number().int(), id: z.string().nullable(), code: z.string(), message: z.string() })),
});

export const jobParamsSchema = z.object({ id: z.string().regex(JOB_ID_PATTERN, "not a job id") });
export const jobQuerySchema = (maxWaitSeconds: number) =>
  z.object({
    /** Seconds to wait for the job to end before answering with its state then. */
    wait: z.coerce.number().min(0).max(maxWaitSeconds).default(0),
  });

const timestamp = z.string().nullable();
export const jobViewSchema = z.object({
  id: z.string(),
  object: z.literal("job"),
  status: z.enum(JOB_STATUSES),
  created_at: z.string(),
  started_at: timestamp,
  finished_at: timestamp,
  model: z.string().nullable(),
  provider: z.string().nullable(),
  output: z.string().nullable(),
  finish_reason: z.string().nullable(),
  usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  attempts: z.number().int(),
  cost_usd: z.number().nullable(),
});
export type JobView = z.output<typeof jobViewSchema>;

/** A stored record as the API shows it (and webhooks send it). */
export function jobView(r: JobRecord): JobView {
  const iso = (d: Date | undefined) => (d === undefined ? null : new Date(d).toISOString());
  return {
    id: r.id,
    object: "job",
    status: r.status,
    created_at: new Date(r.createdAt).toISOString(),
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    model: r.model ?? null,
    provider: r.provider ?? null,
    output: r.output ?? null,
    finish_reason: r.finishReason ?? null,
    usage: r.usage ? { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.promptTokens + r.usage.completionTokens } : null,
    error: r.error ?? null,
    attempts: r.attempts,
    cost_usd: r.costUsd ?? null,
  };
}
