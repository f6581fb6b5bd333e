/**
 * The fault suite's audit: from what the store, the queues and the simulator hold at the end, how every job ended
 * against what its kind expects (fault-jobs.ts). Pure, so each rule can be read (and tested) on its own.
 */
import { OTHER_TENANT } from "./fault-jobs.ts";

export interface FaultPlan {
  /** Plain jobs from the producer (conflict originals and doubles among them): succeeded, or dead on provider trouble. */
  plain: string[];
  nulAnswers: string[];
  crashes: string[];
  nulPrompts: string[];
  /** Poison bodies a worker can recover an id from: failed with a JOB_* code. */
  poisonWithId: string[];
  /** Poison bodies without an id: in the DLQ with a failure code. */
  noIdPoison: number;
  /** Plain jobs whose id another tenant then reused; `expectedOutput` is the original's own answer. */
  conflicts: { id: string; tenant: string; content: string; expectedOutput: string }[];
  /** Plain jobs sent as two identical messages. */
  doubles: string[];
}

export interface JobRow {
  id: string;
  status: string;
  tenant: string | null;
  result_writes: number;
  error_code: string | null;
  output: string | null;
  /** The first message's (or the prompt's) text of the stored request. */
  content: string | null;
  /** Which provider answered; null until one did. */
  provider?: string | null;
  /** Claims of the job (deliveries that reached the store). */
  attempts?: number;
  /** Present once the store counts NUL replacements. */
  output_nul_replaced?: number | null;
}

export interface QueueMessage {
  jobId?: string;
  tenant?: string;
  failureCode?: string;
}

export interface AuditInput {
  plan: FaultPlan;
  rows: JobRow[];
  dlq: QueueMessage[];
  /** Messages still in the main queue at the end. */
  left: QueueMessage[];
  /** Job ids with two provider calls in flight at once. */
  overlapping: string[];
}

const TERMINAL = new Set(["succeeded", "failed", "dead", "expired"]);

/** How many of `ids` fall in each kind of the plan (for telling what got stuck). */
export function byKind(plan: FaultPlan, ids: string[]): Record<string, number> {
  const kinds: [string, Set<string>][] = [
    ["conflict", new Set(plan.conflicts.map((c) => c.id))],
    ["double", new Set(plan.doubles)],
    ["plain", new Set(plan.plain)],
    ["nul-answer", new Set(plan.nulAnswers)],
    ["crash", new Set(plan.crashes)],
    ["nul-prompt", new Set(plan.nulPrompts)],
    ["poison", new Set(plan.poisonWithId)],
  ];
  const out: Record<string, number> = {};
  for (const id of ids) {
    const kind = kinds.find(([, set]) => set.has(id))?.[0] ?? "unknown";
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

/** DLQ contents by (tenant "other" or not) and failure code ("redrive" when SQS moved it without one). */
export function dlqSummary(dlq: QueueMessage[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of dlq) {
    const key = `${m.tenant === OTHER_TENANT ? "other:" : ""}${m.failureCode ?? "redrive"}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export function audit({ plan, rows, dlq, left, overlapping }: AuditInput) {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const tracked = [...plan.plain, ...plan.nulAnswers, ...plan.crashes, ...plan.nulPrompts, ...plan.poisonWithId];
  const trackedRows = tracked.flatMap((id) => byId.get(id) ?? []);
  const terminal = (id: string) => TERMINAL.has(byId.get(id)?.status ?? "");
  // Messages of the jobs themselves; the other tenant's reuses of an id are audited apart.
  const own = (m: QueueMessage) => m.jobId !== undefined && m.tenant !== OTHER_TENANT;
  const dlqIds = new Set(dlq.filter(own).map((m) => m.jobId!));
  const leftIds = new Set(left.filter(own).map((m) => m.jobId!));
  const stuckIds = tracked.filter((id) => !terminal(id));
  const lostIds = stuckIds.filter((id) => !dlqIds.has(id) && !leftIds.has(id));
  // A poison message dead-lettered twice (its worker died between the DLQ copy and the delete) is one message:
  // without an id the copies cannot be told apart, so at most the number sent count, the rest are reported.
  const noIdDeadLettered = dlq.filter((m) => m.jobId === undefined && m.failureCode !== undefined).length;
  const noIdPoisonInDlq = Math.min(plan.noIdPoison, noIdDeadLettered);
  const overlappingSet = new Set(overlapping);
  const count = (ids: string[], ok: (r: JobRow, id: string) => boolean) => ids.filter((id) => byId.has(id) && ok(byId.get(id)!, id)).length;
  const otherDeadLettered = new Set(dlq.filter((m) => m.tenant === OTHER_TENANT && m.failureCode === "JOB_ID_CONFLICT").map((m) => m.jobId));
  const byStatus = (s: string) => trackedRows.filter((r) => r.status === s);
  return {
    succeeded: byStatus("succeeded").length,
    failedPoison: byStatus("failed").filter((r) => r.error_code?.startsWith("JOB_")).length + noIdPoisonInDlq,
    otherFailed: byStatus("failed").filter((r) => !r.error_code?.startsWith("JOB_")).length,
    /** error_code → count over failed and dead records that are not poison: what went wrong besides the plan. */
    failureCodes: [...byStatus("failed"), ...byStatus("dead")].reduce<Record<string, number>>((acc, r) => {
      if (!r.error_code?.startsWith("JOB_")) acc[`${r.status}:${r.error_code}`] = (acc[`${r.status}:${r.error_code}`] ?? 0) + 1;
      return acc;
    }, {}),
    expired: byStatus("expired").length,
    dead: byStatus("dead").length,
    stuckIds,
    lostIds,
    lost: lostIds.length + plan.noIdPoison - noIdPoisonInDlq,
    /** Dead-letter copies beyond one per id-less poison message. */
    extraPoisonCopies: noIdDeadLettered - noIdPoisonInDlq,
    duplicates: trackedRows.filter((r) => r.result_writes > 1).length,
    overlappingCalls: overlapping.length,
    nulPromptsOk: count(plan.nulPrompts, (r) => r.status === "failed" && r.error_code === "JOB_INVALID"),
    nulAnswersOk: count(plan.nulAnswers, (r) => r.status === "succeeded" && (r.output_nul_replaced == null ? !("output_nul_replaced" in r) : r.output_nul_replaced > 0)),
    crashDeadOk: count(plan.crashes, (r, id) => r.status === "dead" && r.error_code === "WORKER_LOST" && dlqIds.has(id)),
    tenantConflictsOk: plan.conflicts.filter((c) => {
      const r = byId.get(c.id);
      const untouched = r !== undefined && r.status === "succeeded" && r.tenant === c.tenant && r.content === c.content && r.output === c.expectedOutput;
      return untouched && otherDeadLettered.has(c.id);
    }).length,
    doubleSentOk: count(plan.doubles, (r, id) => TERMINAL.has(r.status) && r.result_writes === 1 && !overlappingSet.has(id)),
  };
}
