/**
 * The worker: created → running → draining → stopped. Wires the poller (receive), the processor (handle),
 * the acker (delete), the heartbeat (extend) and adaptive concurrency, and owns the staged shutdown:
 * stop polling → hand back messages not yet started → let running jobs finish until the drain deadline →
 * abort the rest and hand them back → flush deletes and writes.
 */
import { setMaxListeners } from "node:events";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import pLimit from "p-limit";
import type { Logger } from "../shared/logger.ts";
import type { Provider } from "../shared/providers/provider.ts";
import { ProviderRouter, type ProviderRouterOptions, type RouteOptions, type RouterHealth } from "../shared/providers/router.ts";
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";
import type { JobStore } from "../shared/store/jobs.ts";
import type { ResultsCache } from "../shared/store/results-cache.ts";
import { coerceError } from "../shared/errors.ts";
import type { JobRecord } from "../shared/store/job-record.ts";
import { NO_METRICS, type FleetMetrics, type JobOutcome } from "../shared/metrics/fleet-metrics.ts";
import { MicroBatcher } from "./micro-batcher.ts";
import { runBackpressure, type BackendGauges } from "./backpressure.ts";
import { Condition } from "./condition.ts";
import { Capacity } from "./capacity.ts";
import { DurableStore } from "./durable-store.ts";
import { Heartbeat, type HeldMessage } from "./heartbeat.ts";
import { Poller } from "./poller.ts";
import { runMaintenance } from "./maintenance.ts";
import { Processor, type Outcome } from "./processor.ts";
import { QueueWaits } from "./queue-wait.ts";
import { Settlement } from "./settlement.ts";

export interface WorkerOptions {
  queue: SqsQueue;
  /** Highest priority first. */
  queueUrls: string[];
  /** Share of receives per class (default 2^(n-1-i): 4:2:1 for three). */
  queueWeights?: number[];
  store: JobStore;
  cache?: ResultsCache;
  /** The provider when there is one (tests, a single backend); `routes` takes precedence. */
  provider?: Provider;
  /** The provider chain, primary first (vLLM → Ollama → Gemini); each with its own breaker and limits. */
  routes?: RouteOptions[];
  /** Router settings: retry budget, breaker threshold and cool-down, spend ledger, prices, risk routing. */
  router?: Omit<ProviderRouterOptions, "routes" | "onAllOpen" | "log">;
  /** Consecutive retryable provider failures that open a provider's circuit (shortcut for router.failureThreshold). */
  breakerThreshold?: number;
  /** Backend gauges for adaptive concurrency; omit to keep the static limit. */
  readGauges?: (signal: AbortSignal) => Promise<BackendGauges | undefined>;
  concurrency: number;
  receiveBatchSize: number;
  receiveParallelism: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  heartbeatIntervalMs: number;
  drainDeadlineMs: number;
  jobDefaultTtlSeconds: number;
  ackFlushMs: number;
  /** Store housekeeping: lost last deliveries recorded dead, records past retention deleted. Default 30 s. */
  maintenanceIntervalMs?: number;
  /** Finished records are kept this long; 0 keeps them forever. Default 30 days. */
  retentionMs?: number;
  /** Store writes failing this long make the worker give up (`onStalled`). Default 5 min. */
  stallExitMs?: number;
  /**
   * Called once when the worker cannot make progress (store unreachable past `stallExitMs`, or a queue refusing for
   * good); main stops the worker and exits non-zero so its supervisor restarts it.
   */
  onStalled?: () => void;
  log: Logger;
  /** Where the worker's metrics go (shared/metrics); its exposition() is what GET /metrics serves. Default: none. */
  metrics?: FleetMetrics;
  /** LOG_BODIES: log each job's prompt and answer at debug level, PII-masked. Default false. */
  logBodies?: boolean;
  workerId?: string;
  onOutcome?: (outcome: Outcome, message: ReceivedMessage) => void;
}

export type WorkerState = "created" | "running" | "draining" | "stopped";

/** What the worker knows about itself right now: for health answers and presence rows. */
export interface WorkerSnapshot {
  workerId: string;
  state: WorkerState;
  /** When start() ran; undefined before. */
  startedAt?: Date;
  /** Messages held (received, not yet acked or handed back). */
  held: number;
  /** Jobs being processed. */
  inFlight: number;
  /** The concurrency limit now (adaptive concurrency moves it). */
  limit: number;
  intakePaused: boolean;
  /** False while store writes fail; how long they have failed. */
  storeWritesHealthy: boolean;
  storeWritesFailingForMs: number;
  jobs: Record<Outcome, number>;
  providers: RouterHealth;
  /** Per queue URL: the longest SentTimestamp → receive wait seen recently (see queue-wait.ts). */
  queueWaitMs: Record<string, number>;
}

/** How far back the queue waits in a snapshot reach (one to two of these). */
const QUEUE_WAIT_WINDOW_MS = 10_000;

export class Worker {
  readonly workerId: string;
  private state: WorkerState = "created";
  private readonly pollAbort = new AbortController();
  private readonly hardStop = new AbortController();
  private readonly capacity: Capacity;
  private readonly heartbeat: Heartbeat;
  private readonly settlement: Settlement;
  private readonly durable: DurableStore;
  private readonly processor: Processor;
  private readonly router: ProviderRouter;
  private readonly running = new Set<Promise<void>>();
  private readonly publisher: MicroBatcher<JobRecord, void> | undefined;
  private poller: Poller | undefined;
  private providerInFlight = 0;
  private intakeHeld = false;
  private readonly intakeChanged = new Condition();
  private loops: Promise<unknown> | undefined;
  private stopping: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  readonly metrics: FleetMetrics;
  /** Queue URL → its name, the `queue` label (bounded: the configured queues). */
  private readonly queueNames: Map<string, string>;
  private startedAt: Date | undefined;
  private readonly queueWaits = new QueueWaits(QUEUE_WAIT_WINDOW_MS);
  readonly counts: Record<Outcome, number> = { succeeded: 0, failed: 0, expired: 0, dead: 0, poison: 0, duplicate: 0, leased: 0, retry: 0, released: 0, conflict: 0, deferred: 0 };

  constructor(private readonly o: WorkerOptions) {
    this.workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
    // Every job in flight and every receive loop listens on these two; listeners are removed as calls end.
    setMaxListeners(0, this.pollAbort.signal, this.hardStop.signal);
    const metrics = (this.metrics = o.metrics ?? NO_METRICS);
    this.queueNames = new Map(o.queueUrls.map((url) => [url, url.slice(url.lastIndexOf("/") + 1)]));
    this.capacity = new Capacity(o.concurrency, o.concurrency);
    this.settlement = new Settlement({ queue: o.queue, maxReceiveCount: o.maxReceiveCount, visibilityTimeoutSeconds: o.visibilityTimeoutSeconds, ackFlushMs: o.ackFlushMs, log: o.log, metrics });
    this.durable = new DurableStore(o.store, o.log, this.hardStop.signal, { onBatch: (kind, size, seconds, ok) => metrics.storeBatch(kind, size, seconds, ok) });
    this.heartbeat = new Heartbeat({
      settlement: this.settlement,
      intervalMs: o.heartbeatIntervalMs,
      visibilityTimeoutSeconds: o.visibilityTimeoutSeconds,
      extendLeases: (ids, leaseMs) => o.store.extendLeases(ids, this.workerId, leaseMs),
      log: o.log,
      metrics,
    });
    const cache = o.cache;
    this.publisher =
      cache && new MicroBatcher<JobRecord, void>({ maxBatch: 200, lingerMs: 5, run: (records) => cache.putMany(records), onBatch: (size, seconds, ok) => metrics.storeBatch("cache", size, seconds, ok) });
    this.router = buildRouter(o, metrics, () => this.poller?.interrupt());
    metrics.observe(() => ({
      inFlight: this.heartbeat.size,
      limit: this.capacity.limit,
      breakers: this.router.health().routes.map((r) => ({ provider: r.name, state: r.state })),
    }));
    this.processor = new Processor({
      workerId: this.workerId,
      store: this.durable,
      settlement: this.settlement,
      publish: this.publish,
      provider: this.router,
      // A held job whose turn comes while no provider is closed goes back unrun; the router's own probe finds recovery.
      circuitOpen: () => this.router.recovering,
      limit: pLimit(o.concurrency),
      visibilityTimeoutSeconds: o.visibilityTimeoutSeconds,
      maxReceiveCount: o.maxReceiveCount,
      jobDefaultTtlSeconds: o.jobDefaultTtlSeconds,
      backendRetryFloorSeconds: o.waitTimeSeconds + 1,
      log: o.log,
      logBodies: o.logBodies,
      onProviderCall: (d) => (this.providerInFlight += d),
    });
  }

  /** Hot-path publish of a record (Redis); never fails a job. */
  private readonly publish = (record: JobRecord): void => void this.publisher?.add(record).catch(() => undefined);

  get status(): WorkerState {
    return this.state;
  }

  /** Messages held right now (received and not yet acked or handed back). */
  get held(): number {
    return this.heartbeat.size;
  }

  /**
   * Stop or resume taking new messages without stopping the worker (jobs held keep running, heartbeats go on):
   * used by scale-in to empty an instance before it gives up its protection.
   */
  setIntakePaused(paused: boolean): void {
    this.intakeHeld = paused;
    this.intakeChanged.notify();
  }

  get intakePaused(): boolean {
    return this.intakeHeld;
  }

  /** False while store writes fail (intake paused until they land again). */
  get storeHealthy(): boolean {
    return this.durable.isHealthy;
  }

  snapshot(): WorkerSnapshot {
    return {
      workerId: this.workerId,
      state: this.state,
      startedAt: this.startedAt,
      held: this.held,
      inFlight: this.running.size,
      limit: this.capacity.limit,
      intakePaused: this.intakeHeld,
      storeWritesHealthy: this.durable.isHealthy,
      storeWritesFailingForMs: this.durable.unhealthyForMs(),
      jobs: { ...this.counts },
      providers: this.router.health(),
      queueWaitMs: this.queueWaits.longest(),
    };
  }

  /** Resolves when the worker holds no message, or `signal` aborts. */
  waitIdle(signal: AbortSignal): Promise<void> {
    return this.capacity.waitForIdle(signal);
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "running";
    this.startedAt = new Date();
    this.heartbeat.start();
    const poller = (this.poller = new Poller({
      queue: this.o.queue,
      queueUrls: this.o.queueUrls,
      capacity: this.capacity,
      batchSize: this.o.receiveBatchSize,
      parallelism: this.o.receiveParallelism,
      waitTimeSeconds: this.o.waitTimeSeconds,
      visibilityTimeoutSeconds: this.o.visibilityTimeoutSeconds,
      // No intake while we cannot record outcomes (store down), or while no provider is closed: the router probes the
      // rested ones itself, so no job is spent on a probe.
      paused: () => this.intakeHeld || !this.durable.isHealthy || this.router.recovering,
      waitUnpaused: async (signal) => {
        await this.intakeChanged.waitUntil(() => !this.intakeHeld, signal);
        await this.durable.waitHealthy(signal);
        await this.router.waitAnyClosed(signal);
      },
      onMessages: (messages) => messages.forEach((m) => this.handle(m)),
      weights: this.o.queueWeights,
      onFatal: () => this.o.onStalled?.(),
      log: this.o.log,
    }));
    const loops: Promise<unknown>[] = [poller.run(this.pollAbort.signal), this.maintain(this.pollAbort.signal)];
    this.watchStall();
    if (this.o.readGauges !== undefined) {
      loops.push(
        runBackpressure(
          {
            capacity: this.capacity,
            readGauges: this.o.readGauges,
            ourInFlight: () => this.providerInFlight,
            intervalMs: 250,
            targetWaiting: Math.max(4, Math.ceil(this.o.concurrency * 0.02)),
            minLimit: Math.min(this.o.concurrency, this.o.receiveBatchSize),
            log: this.o.log,
          },
          this.pollAbort.signal,
        ),
      );
    }
    this.loops = Promise.all(loops);
    this.o.log.info({ workerId: this.workerId, concurrency: this.o.concurrency, queues: this.o.queueUrls.length }, "worker started");
  }

  /** Graceful drain; idempotent (every call returns the same promise). */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private handle(message: ReceivedMessage): void {
    this.queueWaits.note(message.queueUrl, message.sentAt);
    const held = this.heartbeat.track(message);
    this.metrics.jobReceived(this.queueNames.get(message.queueUrl) ?? "other", message.sentAt === undefined ? undefined : (held.receivedAt - message.sentAt) / 1000);
    const task = this.processor
      .process(held, this.hardStop.signal, this.pollAbort.signal)
      .then((outcome) => {
        this.counts[outcome] += 1;
        this.finished(outcome, message);
        held.log.debug({ outcome }, "job settled");
        this.o.onOutcome?.(outcome, message);
      })
      .catch(async (err) => {
        this.finished("released", message);
        // Only a store write abandoned at hard stop lands here: the message goes back for redelivery.
        held.log.warn({ err: coerceError(err), messageId: message.messageId }, "job handed back for redelivery");
        // Not as a fresh copy: the store, which would have to forget the spent deliveries, is what failed.
        await this.settlement.handBack(message, 0, { requeueLastDelivery: false, log: held.log });
      })
      .finally(() => {
        this.heartbeat.untrack(message);
        this.capacity.release();
        this.running.delete(task);
      });
    this.running.add(task);
  }

  /** End-to-end latency only for outcomes that end the job (not a retry or a hand-back). */
  private finished(outcome: JobOutcome, message: ReceivedMessage): void {
    const final = outcome === "succeeded" || outcome === "failed" || outcome === "expired" || outcome === "dead";
    this.metrics.jobFinished(outcome, final && message.sentAt !== undefined ? (Date.now() - message.sentAt) / 1000 : undefined);
  }

  private maintain(signal: AbortSignal): Promise<void> {
    return runMaintenance(
      {
        store: this.o.store,
        maxReceiveCount: this.o.maxReceiveCount,
        // Two missed beats past the lease: a live worker would have extended it by then.
        graceMs: 2 * this.o.heartbeatIntervalMs,
        intervalMs: this.o.maintenanceIntervalMs ?? 30_000,
        retentionMs: this.o.retentionMs ?? 30 * 86_400_000,
        publish: this.o.cache === undefined ? undefined : this.publish,
        peekDeadLetters: () => this.peekDeadLetters(),
        log: this.o.log,
      },
      signal,
    );
  }

  /** Up to 10 messages from each queue's DLQ, left visible (visibility 0) for every other reader. */
  private async peekDeadLetters(): Promise<ReceivedMessage[]> {
    const out: ReceivedMessage[] = [];
    for (const queueUrl of this.o.queueUrls) {
      const dlqUrl = await this.o.queue.deadLetterQueueUrl(queueUrl);
      if (dlqUrl !== undefined) out.push(...(await this.o.queue.receive(dlqUrl, { maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 0 })));
    }
    return out;
  }

  /** A worker that cannot record outcomes for `stallExitMs` says so and asks to be restarted (once). */
  private watchStall(): void {
    const limitMs = this.o.stallExitMs ?? 300_000;
    this.watchdog = setInterval(() => {
      const stalledMs = this.durable.unhealthyForMs();
      if (stalledMs < limitMs) return;
      clearInterval(this.watchdog);
      this.o.log.error({ stalledMs, limitMs }, "no progress: store writes have failed too long; stopping for a restart");
      this.o.onStalled?.();
    }, Math.min(5_000, Math.max(100, limitMs / 10)));
    this.watchdog.unref();
  }

  private async drain(): Promise<void> {
    if (this.state === "created") {
      this.state = "stopped";
      return;
    }
    this.state = "draining";
    this.o.log.info({ held: this.held, running: this.running.size }, "draining");
    this.pollAbort.abort();
    clearInterval(this.watchdog);
    await this.loops;
    const deadline = AbortSignal.timeout(this.o.drainDeadlineMs);
    await this.capacity.waitForIdle(deadline);
    if (this.running.size > 0) {
      this.o.log.warn({ running: this.running.size }, "drain deadline reached; handing back unfinished jobs");
      this.hardStop.abort();
      await Promise.allSettled([...this.running]);
    }
    await this.heartbeat.stop();
    await this.durable.drain();
    await this.settlement.drain();
    await this.publisher?.drain();
    this.state = "stopped";
    this.o.log.info({ counts: this.counts }, "worker stopped");
  }
}

/**
 * The chain the worker calls. One provider given alone becomes a chain of one: it still trips (so intake pauses while
 * it is down), and it is called once per delivery — retries of a lone backend go back through SQS.
 */
function buildRouter(o: WorkerOptions, metrics: FleetMetrics, onAllOpen: () => void): ProviderRouter {
  const routes = o.routes ?? (o.provider === undefined ? [] : [{ provider: o.provider, maxInFlight: o.concurrency, maxAttempts: 1 }]);
  if (routes.length === 0) throw new RangeError("a worker needs a provider or a chain of routes");
  return new ProviderRouter({ failureThreshold: o.breakerThreshold, ...o.router, routes, onAllOpen, log: o.log, metrics });
}
