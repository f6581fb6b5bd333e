/**
 * `fleet status`: one look at the whole fleet, gathered from what is shared — SQS queue attributes, the `workers`
 * presence table and the jobs table. Each section is gathered on its own: a store or queue that does not answer
 * leaves its section empty and names itself in `errors`, so the view still helps during an incident.
 * The age of the oldest message: SQS gives it only to CloudWatch and a peek would spend a delivery, so it is the
 * longest SentTimestamp → receive wait the live workers saw recently (queue-wait.ts); null when none received lately.
 */
import type { SqsQueue } from "../shared/queue/sqs.ts";
import { queueNameOf } from "../shared/queue/queue-name.ts";
import { errorCode } from "../shared/errors.ts";
import type { JobStore } from "../shared/store/jobs.ts";
import type { PresenceStore, SeenWorker } from "../shared/store/presence.ts";
import type { Throughput } from "../shared/store/throughput.ts";

export interface QueueDepth {
  visible: number;
  inFlight: number;
  delayed: number;
}

export interface QueueStatus extends Partial<QueueDepth> {
  name: string;
  /** Longest wait seen by live workers recently, ms; null when no worker received from it lately. */
  oldestWaitMs: number | null;
  dlq: ({ name: string } & QueueDepth) | null;
  error?: string;
}

export interface WorkerStatus {
  id: string;
  host: string;
  pid: number;
  state: string;
  held: number;
  inFlight: number;
  limit: number;
  intakePaused: boolean;
  storeWritesHealthy: boolean;
  /** Jobs this worker gave an outcome since it started (succeeded, failed, expired, dead, poison). */
  done: number;
  jobs: Record<string, number>;
  uptimeS: number;
  seenAgoMs: number;
  opsPort?: number;
}

export interface ProviderStatus {
  name: string;
  /** Workers per breaker state, e.g. { closed: 2, open: 1 }. */
  breakers: Record<string, number>;
  inFlight: number;
  maxInFlight: number;
  lastErrorCodes: string[];
}

export interface FleetStatus {
  at: string;
  queues: QueueStatus[];
  /** Live workers only; `goneWorkers` counts rows unseen for three intervals (killed, hung, cut off). */
  workers: WorkerStatus[];
  goneWorkers: number;
  lastMinute: Throughput | null;
  providers: ProviderStatus[];
  cost: { since: string; totalUsd: number; byProvider: Record<string, number> } | null;
  errors: { section: string; code: string }[];
}

export interface FleetSources {
  queue: Pick<SqsQueue, "depth" | "deadLetterQueueUrl">;
  /** Highest priority first. */
  queueUrls: string[];
  presence: Pick<PresenceStore, "list">;
  throughput: (windowMs: number) => Promise<Throughput>;
  usage: Pick<JobStore, "usage">;
  /** Cost is summed from here to now. */
  costSince: Date;
}

/** Outcomes that gave a job its end here (hand-backs, retries, duplicates and leases held elsewhere are not). */
const DONE = ["succeeded", "failed", "expired", "dead", "poison"];
const WINDOW_MS = 60_000;

export async function gatherFleetStatus(s: FleetSources): Promise<FleetStatus> {
  const errors: FleetStatus["errors"] = [];
  const attempt = async <T>(section: string, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run();
    } catch (err) {
      errors.push({ section, code: errorCode(err) });
      return null;
    }
  };
  const [seen, lastMinute, usage, depths] = await Promise.all([
    attempt("workers", () => s.presence.list()),
    attempt("throughput", () => s.throughput(WINDOW_MS)),
    attempt("cost", () => s.usage.usage({ from: s.costSince, to: new Date() })),
    Promise.all(s.queueUrls.map((url) => queueDepths(s, url))),
  ]);
  const live = (seen ?? []).filter((w) => !w.gone);
  const queues = depths.map((d): QueueStatus => ({ ...d, oldestWaitMs: oldestWait(live, d.name) }));
  for (const q of queues) if (q.error !== undefined) errors.push({ section: `queue:${q.name}`, code: q.error });
  return {
    at: new Date().toISOString(),
    queues,
    workers: live.map(workerStatus),
    goneWorkers: (seen ?? []).length - live.length,
    lastMinute,
    providers: providerStatus(live),
    cost: usage === null ? null : costOf(usage, s.costSince),
    errors,
  };
}

async function queueDepths(s: FleetSources, url: string): Promise<Omit<QueueStatus, "oldestWaitMs">> {
  const name = queueNameOf(url);
  try {
    const [depth, dlqUrl] = await Promise.all([s.queue.depth(url), s.queue.deadLetterQueueUrl(url)]);
    const dlq = dlqUrl === undefined ? null : { name: queueNameOf(dlqUrl), ...(await s.queue.depth(dlqUrl)) };
    return { name, ...depth, dlq };
  } catch (err) {
    return { name, dlq: null, error: errorCode(err) };
  }
}

/** Workers key waits by queue URL; matched here by name, so a CLI given QUEUE_NAME and workers given URLs agree. */
function oldestWait(live: SeenWorker[], name: string): number | null {
  const waits = live.flatMap((w) => Object.entries(w.queueWaitMs).filter(([url]) => queueNameOf(url) === name).map(([, ms]) => ms));
  return waits.length === 0 ? null : Math.max(...waits);
}

function workerStatus(w: SeenWorker): WorkerStatus {
  return {
    id: w.workerId,
    host: w.host,
    pid: w.pid,
    state: w.state,
    held: w.held,
    inFlight: w.inFlight,
    limit: w.concurrencyLimit,
    intakePaused: w.intakePaused,
    storeWritesHealthy: w.storeWritesHealthy,
    done: DONE.reduce((n, k) => n + (w.jobs[k] ?? 0), 0),
    jobs: w.jobs,
    uptimeS: Math.max(0, Math.round((w.seenAt.getTime() - w.startedAt.getTime()) / 1000)),
    seenAgoMs: w.seenAgoMs,
    ...(w.opsPort === undefined ? {} : { opsPort: w.opsPort }),
  };
}

function providerStatus(live: SeenWorker[]): ProviderStatus[] {
  const byName = new Map<string, ProviderStatus>();
  for (const p of live.flatMap((w) => w.providers)) {
    const agg = byName.get(p.name) ?? { name: p.name, breakers: {}, inFlight: 0, maxInFlight: 0, lastErrorCodes: [] };
    agg.breakers[p.state] = (agg.breakers[p.state] ?? 0) + 1;
    agg.inFlight += p.inFlight;
    agg.maxInFlight += p.maxInFlight;
    if (p.lastErrorCode !== undefined && !agg.lastErrorCodes.includes(p.lastErrorCode)) agg.lastErrorCodes.push(p.lastErrorCode);
    byName.set(p.name, agg);
  }
  return [...byName.values()];
}

function costOf(rows: Awaited<ReturnType<JobStore["usage"]>>, since: Date): NonNullable<FleetStatus["cost"]> {
  const byProvider: Record<string, number> = {};
  for (const r of rows) byProvider[r.provider ?? "unknown"] = (byProvider[r.provider ?? "unknown"] ?? 0) + r.costUsd;
  const totalUsd = Object.values(byProvider).reduce((a, b) => a + b, 0);
  return { since: since.toISOString(), totalUsd, byProvider };
}
