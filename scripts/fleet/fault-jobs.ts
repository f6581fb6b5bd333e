/**
 * The fault suite's special jobs, beside the plain ones and the poison of poison-bodies.ts: each kind has a body
 * builder here and an expected final record checked by the audit (audit.ts).
 *   nul-prompt   a valid-looking job whose text contains U+0000, sent raw (no producer validation) → failed JOB_INVALID
 *   nul-answer   a valid job with NUL_ANSWER_MARKER: the simulator answers with U+0000 → succeeded (NUL replaced)
 *   crash        a valid job with CRASH_MARKER: its worker dies on every delivery → dead WORKER_LOST, message in DLQ
 *   conflict     a second job with a plain job's id from tenant OTHER_TENANT → original untouched, other in the DLQ
 *                with failure_code JOB_ID_CONFLICT
 *   double       a plain job sent as two identical messages → one result write, never two calls at once
 * Every job's text carries `[job:<id>]`, so the worker harness can label provider calls with the job id.
 */
import type { JobInput } from "../../shared/contract.ts";

export const CRASH_MARKER = "<crash>";
export { NUL_ANSWER_MARKER } from "../simulators/vllm/faults.ts";
export const OTHER_TENANT = "other";

const TAG = /\[job:([A-Za-z0-9][A-Za-z0-9._:-]{0,127})\]/;

export function jobTag(id: string): string {
  return `[job:${id}]`;
}

/** The id a job's text is tagged with, if any. */
export function taggedJobId(text: string): string | undefined {
  return TAG.exec(text)?.[1];
}

/** A plain job (or one with a marker) for the producer, with its id chosen here so its text can carry it. */
export function jobInput(id: string, i: number, marker = ""): JobInput {
  return {
    id,
    tenant: `t${i % 7}`,
    messages: [{ role: "user", content: `fault suite job ${i} ${jobTag(id)}${marker}: tell me about number ${i * 7919}` }],
    params: { max_tokens: 16 + (i * 37) % 112 },
  };
}

/** A raw body that passes for a job but has U+0000 in its text; chat and completion alternate. JSON escapes the NUL. */
export function nulPromptBody(id: string, i: number): string {
  const text = `nul prompt ${jobTag(id)}: a\u0000b`;
  const shape = i % 2 === 0 ? { messages: [{ role: "user", content: text }] } : { prompt: text };
  return JSON.stringify({ v: 1, id, tenant: "t-nul", created_at: new Date().toISOString(), ...shape, params: { max_tokens: 8 } });
}

/** Another tenant's job reusing `id`: different text, so its answer would differ from the original's. */
export function conflictBody(id: string): string {
  const messages = [{ role: "user", content: `${OTHER_TENANT} tenant's own question ${jobTag(id)}` }];
  return JSON.stringify({ v: 1, id, tenant: OTHER_TENANT, created_at: new Date().toISOString(), messages, params: { max_tokens: 8 } });
}
