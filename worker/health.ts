/**
 * The worker's health, as a load balancer and a person ask for it. Ready means the worker can take and finish jobs:
 * the store answers (SELECT 1) and its writes are landing, every queue answers (GetQueueAttributes), at least one
 * provider's breaker is not open, and the worker is running (not starting, draining or stopped — so a load balancer
 * stops sending before the drain ends). Active checks go through ComponentCheck (bounded, cached ~1 s).
 * Nothing here carries a message text, URL or credential: queues are named by their last path segment and failures by
 * their stable error code.
 */
import type { RouteHealth } from "../shared/providers/router.ts";
import { queueNameOf } from "../shared/queue/queue-name.ts";
import { ComponentCheck, type CheckResult, type ComponentCheckOptions } from "../shared/health/component-check.ts";
import type { WorkerSnapshot } from "./worker.ts";

export type ComponentState = "up" | "down";

export interface StoreHealth extends Omit<CheckResult, "checkedAt"> {
  state: ComponentState;
  checkedAt: string;
  /** The worker's own writes: "failing" while they are being retried for want of Postgres. */
  writes: "ok" | "failing";
  writesFailingForMs: number;
}

export interface QueueHealth extends Omit<CheckResult, "checkedAt"> {
  name: string;
  state: ComponentState;
  checkedAt: string;
}

/** A provider as its breaker sees it (passive: real calls decide, no probe is made for health). */
export interface ProviderHealth extends RouteHealth {
  /** False while the breaker is open. */
  ok: boolean;
}

export interface WorkerHealthSummary {
  ok: boolean;
  id: string;
  state: WorkerSnapshot["state"];
  startedAt?: string;
  uptimeS: number;
  held: number;
  inFlight: number;
  limit: number;
  intakePaused: boolean;
  jobs: WorkerSnapshot["jobs"];
}

export interface HealthReport {
  status: "ready" | "not_ready";
  checkedAt: string;
  /** What keeps the worker from being ready: store, queue:<name>, providers or worker, each with a stable reason. */
  failing: { component: string; reason: string }[];
  components: { store: StoreHealth; queues: QueueHealth[]; providers: ProviderHealth[]; worker: WorkerHealthSummary };
}

export interface WorkerHealthOptions extends ComponentCheckOptions {
  snapshot: () => WorkerSnapshot;
  /** SELECT 1 through the worker's pool. */
  pingStore: (signal: AbortSignal) => Promise<unknown>;
  queueUrls: string[];
  /** GetQueueAttributes on one queue. */
  checkQueue: (queueUrl: string, signal: AbortSignal) => Promise<unknown>;
}

export class WorkerHealth {
  private readonly store: ComponentCheck;
  private readonly queues: { name: string; check: ComponentCheck }[];

  constructor(private readonly o: WorkerHealthOptions) {
    this.store = new ComponentCheck(o.pingStore, o);
    this.queues = o.queueUrls.map((url) => ({ name: queueNameOf(url), check: new ComponentCheck((signal) => o.checkQueue(url, signal), o) }));
  }

  async report(): Promise<HealthReport> {
    const snap = this.o.snapshot();
    const [store, ...queues] = await Promise.all([this.store.result(), ...this.queues.map((q) => q.check.result())]);
    const storeHealth: StoreHealth = {
      ...stamp(store!),
      state: store!.ok && snap.storeWritesHealthy ? "up" : "down",
      writes: snap.storeWritesHealthy ? "ok" : "failing",
      writesFailingForMs: snap.storeWritesFailingForMs,
    };
    const queueHealth = queues.map((r, i): QueueHealth => ({ name: this.queues[i]!.name, ...stamp(r), state: r.ok ? "up" : "down" }));
    const providers = snap.providers.routes.map((r): ProviderHealth => ({ ...r, ok: r.state !== "open" }));
    const workerHealth = summary(snap);
    const failing = [
      ...(storeHealth.state === "up" ? [] : [{ component: "store", reason: store!.error ?? "WRITES_FAILING" }]),
      ...queueHealth.flatMap((q) => (q.state === "up" ? [] : [{ component: `queue:${q.name}`, reason: q.error ?? "DOWN" }])),
      ...(providers.some((p) => p.ok) ? [] : [{ component: "providers", reason: "ALL_OPEN" }]),
      ...(workerHealth.ok ? [] : [{ component: "worker", reason: snap.state.toUpperCase() }]),
    ];
    return {
      status: failing.length === 0 ? "ready" : "not_ready",
      checkedAt: new Date().toISOString(),
      failing,
      components: { store: storeHealth, queues: queueHealth, providers, worker: workerHealth },
    };
  }
}

function summary(snap: WorkerSnapshot): WorkerHealthSummary {
  const started = snap.startedAt;
  return {
    ok: snap.state === "running",
    id: snap.workerId,
    state: snap.state,
    ...(started === undefined ? {} : { startedAt: started.toISOString() }),
    uptimeS: started === undefined ? 0 : Math.round((Date.now() - started.getTime()) / 1000),
    held: snap.held,
    inFlight: snap.inFlight,
    limit: snap.limit,
    intakePaused: snap.intakePaused,
    jobs: snap.jobs,
  };
}

function stamp(r: CheckResult): Omit<CheckResult, "checkedAt"> & { checkedAt: string } {
  return { ...r, checkedAt: new Date(r.checkedAt).toISOString() };
}
