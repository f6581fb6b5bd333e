/**
 * `POST /v1/jobs` behind the HTTP layer. The tenant is the key's: a body `tenant` naming another is refused (never
 * silently replaced, which would hide a client's bug). Ids are fixed here, so webhooks are stored before the jobs
 * are sent (a job that ends at once still finds its webhook); jobs go onto SQS through the Producer, as any
 * producer's do, and each sent job gets a `queued` row so it can be read before a worker claims it.
 */
import { newJobId, type Job, type JobInput } from "../../shared/contract.ts";
import type { Logger } from "../../shared/logger.ts";
import type { JobStore } from "../../shared/store/jobs.ts";
import type { Producer } from "../producer.ts";
import type { JobInputBody } from "./job-schemas.ts";
import type { JobWebhooks } from "./job-webhooks.ts";

export interface SubmitDeps {
  producer: Pick<Producer, "submitMany">;
  store: Pick<JobStore, "recordQueued">;
  jobWebhooks: Pick<JobWebhooks, "register" | "forget">;
  log: Pick<Logger, "warn">;
}

export interface SubmitRefusal {
  index: number;
  id: string | null;
  /** Lower-case: `tenant_mismatch`, `job_invalid`, `job_too_large`, `job_duplicate_id`, or the queue's code. */
  code: string;
  message: string;
  /** True when the job itself is at fault (a 400 for a single job); false for the queue failing (a 503). */
  clientFault: boolean;
}

export interface SubmitOutcome {
  accepted: { index: number; id: string }[];
  refused: SubmitRefusal[];
}

export async function submitJobs(d: SubmitDeps, tenant: string, inputs: JobInputBody[]): Promise<SubmitOutcome> {
  const refused: SubmitRefusal[] = [];
  const jobs: { index: number; input: JobInput & { id: string }; webhook?: string }[] = [];
  inputs.forEach((body, index) => {
    const { webhook_url: webhook, tenant: named, ...fields } = body;
    if (named !== undefined && named !== tenant) {
      refused.push({ index, id: fields.id ?? null, code: "tenant_mismatch", message: "tenant must be omitted or be the API key's own tenant", clientFault: true });
      return;
    }
    jobs.push({ index, input: { ...fields, id: fields.id ?? newJobId(), tenant }, webhook });
  });
  const hooks = jobs.flatMap((j) => (j.webhook === undefined ? [] : [{ jobId: j.input.id, url: j.webhook }]));
  await d.jobWebhooks.register(tenant, hooks);
  let sent: Job[];
  try {
    const result = await d.producer.submitMany(jobs.map((j) => j.input));
    for (const f of result.failed) {
      const clientFault = f.code.startsWith("JOB_");
      refused.push({ index: jobs[f.index]!.index, id: f.id ?? null, code: f.code.toLowerCase(), message: f.message, clientFault });
    }
    sent = result.jobs;
  } catch (err) {
    await forgetQuietly(d, tenant, hooks.map((h) => h.jobId));
    throw err;
  }
  const sentIds = new Set(sent.map((j) => j.id));
  await forgetQuietly(d, tenant, hooks.map((h) => h.jobId).filter((id) => !sentIds.has(id)));
  // The jobs are on the queue whatever happens here: a failed insert only means "not found" until a worker claims one.
  await d.store.recordQueued(sent).catch((err: Error) => d.log.warn({ reason: err.message, jobs: sent.length }, "queued rows not written; jobs read as not found until claimed"));
  refused.sort((a, b) => a.index - b.index);
  const accepted = jobs.filter((j) => sentIds.has(j.input.id)).map((j) => ({ index: j.index, id: j.input.id }));
  return { accepted, refused };
}

async function forgetQuietly(d: SubmitDeps, tenant: string, ids: string[]): Promise<void> {
  await d.jobWebhooks.forget(tenant, ids).catch((err: Error) => d.log.warn({ reason: err.message }, "webhooks of unsent jobs not removed; they never fire"));
}
