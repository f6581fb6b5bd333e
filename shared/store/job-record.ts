/** Terminal statuses: a row in one of these is never written again. */
export const TERMINAL_STATUSES = ["succeeded", "failed", "dead", "expired"] as const;
export const JOB_STATUSES = ["queued", "running", ...TERMINAL_STATUSES] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

/** The public view of a job row: what `GET /jobs/:id` returns and what the results cache holds. */
export interface JobRecord {
  id: string;
  tenant: string | undefined;
  status: JobStatus;
  output: string | undefined;
  /** How many U+0000 the answer held (Postgres refuses them): each was stored as U+FFFD. 0 normally. */
  outputNulReplaced: number;
  finishReason: string | undefined;
  usage: { promptTokens: number; completionTokens: number } | undefined;
  provider: string | undefined;
  model: string | undefined;
  attempts: number;
  providerCalls: number;
  resultWrites: number;
  error: { code: string; message: string } | undefined;
  createdAt: Date;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
  /** From the provider router, for succeeded jobs: what the answer cost (USD), how long the router took, every call. */
  costUsd?: number;
  latencyMs?: number;
  providerAttempts?: { provider: string; ok: boolean; code?: string; latencyMs: number }[];
  /** W3C trace id of the delivery that last wrote the job (shared/trace.ts): finds its log lines and provider calls. */
  traceId?: string;
}

export function isTerminal(status: string): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** JSON for the cache; dates become ISO strings and undefined fields are dropped. */
export function encodeRecord(r: JobRecord): string {
  return JSON.stringify(r);
}

/** The inverse of encodeRecord; undefined for anything that is not a record (a foreign or corrupt value). */
export function decodeRecord(text: string): JobRecord | undefined {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null || typeof raw.id !== "string" || !isStatus(raw.status) || typeof raw.createdAt !== "string") {
    return undefined;
  }
  const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  const date = (v: unknown): Date | undefined => (typeof v === "string" ? new Date(v) : undefined);
  const num = (v: unknown): number => (typeof v === "number" ? v : 0);
  const usage = raw.usage as JobRecord["usage"] | null | undefined;
  const error = raw.error as JobRecord["error"] | null | undefined;
  return {
    id: raw.id,
    tenant: str(raw.tenant),
    status: raw.status,
    output: str(raw.output),
    outputNulReplaced: num(raw.outputNulReplaced),
    finishReason: str(raw.finishReason),
    usage: usage ? { promptTokens: num(usage.promptTokens), completionTokens: num(usage.completionTokens) } : undefined,
    provider: str(raw.provider),
    model: str(raw.model),
    attempts: num(raw.attempts),
    providerCalls: num(raw.providerCalls),
    resultWrites: num(raw.resultWrites),
    error: error ? { code: String(error.code), message: String(error.message) } : undefined,
    createdAt: new Date(raw.createdAt),
    startedAt: date(raw.startedAt),
    finishedAt: date(raw.finishedAt),
    ...(typeof raw.costUsd === "number" ? { costUsd: raw.costUsd } : {}),
    ...(typeof raw.latencyMs === "number" ? { latencyMs: raw.latencyMs } : {}),
    ...(Array.isArray(raw.providerAttempts) ? { providerAttempts: raw.providerAttempts as JobRecord["providerAttempts"] } : {}),
    ...(typeof raw.traceId === "string" ? { traceId: raw.traceId } : {}),
  };
}

function isStatus(v: unknown): v is JobStatus {
  return typeof v === "string" && (JOB_STATUSES as readonly string[]).includes(v);
}
