/**
 * The simulated engine: vLLM's continuous-batching scheduler driven by ONE step clock.
 *
 * Each step (like vLLM V1's scheduler, FCFS):
 *   1. every running sequence gets its share of the `maxNumBatchedTokens` budget, in admission order: one decode
 *      token, or the next chunk of its prompt (chunked prefill). KV slots are allocated as tokens are scheduled; when
 *      the cache is full the NEWEST running sequence is preempted back to the front of the waiting queue (its KV is
 *      freed and recomputed later: prompt + tokens generated so far), counting a preemption;
 *   2. if nothing was preempted, waiting sequences are admitted FCFS while there is budget, a free seat
 *      (`maxNumSeqs`) and KV room for their first chunk; with prefix caching, the leading prompt blocks already
 *      computed for an earlier request are not prefilled again;
 *   3. the step lasts stepDurationMs (step-time.ts) × a seeded jitter of ±stepJitter, simulated with a single timer;
 *      at its end prefill progress and one token per decoding sequence are applied.
 * Idle = no timer. Time comes from a StepClock: wall time scaled by timeScale, or virtual time for calibration. The
 * schedule is absolute, so late timers are caught up (the next step starts at once) instead of drifting.
 * Per step the work is O(running); nothing is allocated per token.
 */
import { WallClock, type Cancel, type StepClock } from "./clock.ts";
import { Fifo } from "./fifo.ts";
import { mulberry32 } from "./generator.ts";
import { BLOCK_SIZE, PrefixCache } from "./prefix-cache.ts";
import { Sequence, type SequenceOutcome, type SequenceResult, type SequenceSpec } from "./sequence.ts";
import { stepDurationMs, type StepModel } from "./step-time.ts";

export { Sequence, type SequenceOutcome, type SequenceResult, type SequenceSpec } from "./sequence.ts";

export interface EngineConfig extends StepModel {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  kvCapacityTokens: number;
  /** Each step's duration is multiplied by 1 ± this (uniform, seeded): GPU timing noise. */
  stepJitter: number;
  /** vLLM's automatic prefix caching (on by default since V1). */
  enablePrefixCaching: boolean;
  /** Seeds the step jitter. */
  seed: number;
  /** Complete every request at submit, no clock. */
  instant: boolean;
  /** Wall ms per simulated ms (for the default wall clock). */
  timeScale: number;
}

/** One finished step, for the metrics. */
export interface StepReport {
  durationMs: number;
  /** Output tokens produced. */
  generationTokens: number;
  /** Prompt tokens of the requests whose prefill completed. */
  promptTokens: number;
  /** Tokens whose inter-token latency is `durationMs`. */
  itlCount: number;
  /** Tokens computed: decodes plus prefill chunks (vLLM's iteration tokens). */
  scheduledTokens: number;
}

/** What the metrics need from the engine; called synchronously, keep it cheap. */
export interface EngineObserver {
  onStep(report: StepReport): void;
  /** A request's prompt was looked up in the prefix cache at admission: tokens queried and tokens found. */
  onPrefixLookup(queriedTokens: number, hitTokens: number): void;
  /** A token whose inter-token latency differs from its step's duration (resumed after a skip or preemption). */
  onInterTokenLatency(ms: number): void;
  onPreemption(): void;
  onFinish(result: SequenceResult): void;
}

export interface EngineStats {
  requestsSubmitted: number;
  /** Finished with stop or length. */
  requestsServed: number;
  requestsAborted: number;
  requestsFailed: number;
  promptTokens: number;
  generationTokens: number;
  running: number;
  waiting: number;
  peakRunning: number;
  peakWaiting: number;
  preemptions: number;
  steps: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  kvUsedTokens: number;
  kvUsage: number;
}

export class Engine {
  private readonly waiting = new Fifo<Sequence>();
  private abortedWaiting = 0;
  private running: Sequence[] = [];
  private readonly batch: Sequence[] = [];
  private readonly finished: Sequence[] = [];
  private kvUsed = 0;
  private simNowMs = 0;
  private stepStartMs = 0;
  private stepEndMs = 0;
  /** Tokens computed in the step under way. */
  private stepTokens = 0;
  private timer: Cancel | undefined;
  private closed = false;
  private waiters: { predicate: (s: EngineStats) => boolean; resolve: (s: EngineStats) => void; reject: (e: Error) => void }[] = [];
  private readonly clock: StepClock;
  private readonly jitter: () => number;
  private readonly prefixCache: PrefixCache | undefined;
  private readonly counters = {
    requestsSubmitted: 0,
    requestsServed: 0,
    requestsAborted: 0,
    requestsFailed: 0,
    promptTokens: 0,
    generationTokens: 0,
    peakRunning: 0,
    peakWaiting: 0,
    preemptions: 0,
    steps: 0,
    prefixCacheQueries: 0,
    prefixCacheHits: 0,
  };

  constructor(
    private readonly config: EngineConfig,
    private readonly observer?: EngineObserver,
    clock?: StepClock,
  ) {
    this.clock = clock ?? new WallClock(config.timeScale);
    const random = mulberry32(config.seed ^ 0x57e9);
    this.jitter = () => 1 + config.stepJitter * (2 * random() - 1);
    this.prefixCache = config.enablePrefixCaching ? new PrefixCache(Math.floor(config.kvCapacityTokens / BLOCK_SIZE)) : undefined;
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.size - this.abortedWaiting;
  }

  /** KV cache in use, 0-1. */
  get kvUsage(): number {
    return this.kvUsed / this.config.kvCapacityTokens;
  }

  stats(): EngineStats {
    return { ...this.counters, running: this.numRunning, waiting: this.numWaiting, kvUsedTokens: this.kvUsed, kvUsage: this.kvUsage };
  }

  /** Current simulated time, ms since the engine was created (advances by whole steps; jumps forward when idle). */
  get simulatedNowMs(): number {
    return this.simNowMs;
  }

  /**
   * Resolves with the stats the first time `predicate` holds, checked now and after every submit and step: an event
   * to await instead of polling (tests, demos). Rejects if the engine is closed first.
   */
  whenStats(predicate: (s: EngineStats) => boolean): Promise<EngineStats> {
    const now = this.stats();
    if (predicate(now)) return Promise.resolve(now);
    if (this.closed) return Promise.reject(new Error("engine closed"));
    return new Promise((resolve, reject) => this.waiters.push({ predicate, resolve, reject }));
  }

  /** Queue a request. `onDone` is called exactly once (possibly synchronously in instant mode). */
  submit(spec: SequenceSpec, onDone: (result: SequenceResult) => void): Sequence {
    const seq = new Sequence(spec, this.arrivalTime(), onDone);
    this.counters.requestsSubmitted++;
    if (this.closed) {
      this.finish(seq, "error");
      return seq;
    }
    if (this.config.instant) {
      if (spec.onToken !== undefined) for (let g = 1; g <= spec.outputTokens; g++) spec.onToken(g);
      seq.generated = spec.outputTokens;
      seq.firstScheduledMs = seq.firstTokenMs = seq.lastTokenMs = seq.arrivalMs;
      this.counters.promptTokens += spec.promptTokens;
      this.counters.generationTokens += spec.outputTokens;
      this.observer?.onStep({ durationMs: 0, generationTokens: spec.outputTokens, promptTokens: spec.promptTokens, itlCount: 0, scheduledTokens: 0 });
      this.finish(seq, spec.finishReason, seq.arrivalMs);
      this.notifyWaiters();
      return seq;
    }
    this.waiting.push(seq);
    if (this.numWaiting > this.counters.peakWaiting) this.counters.peakWaiting = this.numWaiting;
    this.wake();
    this.notifyWaiters();
    return seq;
  }

  /** The client went away: stop working on it (vLLM aborts on disconnect). No-op once done. */
  abort(seq: Sequence): void {
    if (seq.reported || seq.aborted) return;
    seq.aborted = true;
    if (seq.state === "waiting") {
      // Left in the FIFO and skipped when reached: O(1) now.
      this.abortedWaiting++;
      this.finish(seq, "abort");
      this.notifyWaiters();
    }
    // Running: freed at the end of the current step (its KV stays allocated until then, as on a GPU).
  }

  /** Fail every request in flight (engine death). The engine stays usable. */
  failAll(): void {
    this.clearTimer();
    // Reset first, report after: a callback may submit again and must find a consistent, idle engine.
    const victims = [...this.waiting.drain(), ...this.running];
    this.abortedWaiting = 0;
    this.running = [];
    this.batch.length = 0;
    this.kvUsed = 0;
    for (const seq of victims) {
      seq.kvTokens = 0;
      this.finish(seq, seq.aborted ? "abort" : "error");
    }
    this.notifyWaiters();
  }

  /** Stop the clock for good and fail what is in flight. */
  close(): void {
    this.closed = true;
    this.failAll();
    for (const w of this.waiters.splice(0)) w.reject(new Error("engine closed"));
  }

  /**
   * Simulated arrival time. While a step runs, an arrival belongs to that step at the latest: if the engine lags
   * behind wall time (a loaded CPU), wall-mapped time would run ahead of the step clock and make latencies negative.
   */
  private arrivalTime(): number {
    const wall = this.clockNowMs();
    return this.timer !== undefined && this.stepEndMs > this.simNowMs ? Math.min(wall, this.stepEndMs) : Math.max(wall, this.simNowMs);
  }

  private clockNowMs(): number {
    return this.clock.now();
  }

  /** Start the clock if idle. Deferred a turn so a burst arriving together lands in one step. */
  private wake(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = this.clock.soon(() => this.startStep(true));
  }

  private startStep(fromIdle: boolean): void {
    this.timer = undefined;
    if (fromIdle) this.simNowMs = Math.max(this.simNowMs, this.clockNowMs());
    const durationMs = this.schedule();
    if (durationMs < 0) return; // nothing to do: idle, no timer
    this.stepStartMs = this.simNowMs;
    this.stepEndMs = this.simNowMs + durationMs;
    this.timer = this.clock.at(this.stepEndMs, () => this.endStep());
  }

  /** Decide this step's batch; returns its simulated duration in ms, or -1 when there is nothing to run. */
  private schedule(): number {
    const { maxNumSeqs, kvCapacityTokens } = this.config;
    let budget = this.config.maxNumBatchedTokens;
    let contextTokens = 0;
    let preempted = false;
    const running = this.running;
    const batch = this.batch;
    batch.length = 0;
    let end = running.length;
    for (let i = 0; i < end && budget > 0; i++) {
      const seq = running[i]!;
      const prefilling = seq.prefilled < seq.prefillTarget;
      const want = prefilling ? Math.min(seq.prefillTarget - seq.prefilled, budget) : 1;
      while (this.kvUsed + want > kvCapacityTokens && end > i) {
        const victim = running[--end]!;
        this.preempt(victim);
        preempted = true;
      }
      if (end <= i) break; // this sequence was itself the newest and got preempted
      seq.stepTokens = want;
      seq.kvTokens += want;
      this.kvUsed += want;
      budget -= want;
      contextTokens += seq.kvTokens;
      batch.push(seq);
    }
    running.length = end;
    while (!preempted && budget > 0 && running.length < maxNumSeqs) {
      const seq = this.waiting.peek();
      if (seq === undefined) break;
      if (seq.aborted) {
        this.waiting.shift();
        this.abortedWaiting--;
        this.finish(seq, "abort");
        continue;
      }
      const cached = seq.prefilled === 0 ? this.cachedPrefix(seq) : 0;
      const want = Math.min(seq.prefillTarget - seq.prefilled - cached, budget);
      if (this.kvUsed + cached + want > kvCapacityTokens) break;
      this.waiting.shift();
      this.countPrefixLookup(seq, cached);
      seq.state = "running";
      if (seq.firstScheduledMs < 0) seq.firstScheduledMs = this.simNowMs;
      running.push(seq);
      seq.prefilled += cached;
      seq.stepTokens = want;
      seq.kvTokens += cached + want;
      this.kvUsed += cached + want;
      budget -= want;
      contextTokens += seq.kvTokens;
      batch.push(seq);
    }
    if (running.length > this.counters.peakRunning) this.counters.peakRunning = running.length;
    if (batch.length === 0) return -1;
    const tokens = this.config.maxNumBatchedTokens - budget;
    this.stepTokens = tokens;
    return stepDurationMs(this.config, { seqs: batch.length, tokens, contextTokens }) * this.jitter();
  }

  /** Prompt tokens of `seq` already in the prefix cache (0 without caching or block hashes). */
  private cachedPrefix(seq: Sequence): number {
    const blocks = seq.spec.promptBlocks;
    if (this.prefixCache === undefined || blocks === undefined) return 0;
    // The cache only holds prompt blocks: a preempted sequence recomputes its output tokens in any case.
    return this.prefixCache.lookup(blocks, seq.spec.promptTokens).cachedTokens;
  }

  private countPrefixLookup(seq: Sequence, cached: number): void {
    if (this.prefixCache === undefined || seq.spec.promptBlocks === undefined || seq.prefixCounted) return;
    seq.prefixCounted = true;
    seq.cachedTokens = cached;
    this.counters.prefixCacheQueries += seq.spec.promptTokens;
    this.counters.prefixCacheHits += cached;
    this.observer?.onPrefixLookup(seq.spec.promptTokens, cached);
  }

  private preempt(seq: Sequence): void {
    this.kvUsed -= seq.kvTokens;
    seq.kvTokens = 0;
    seq.prefilled = 0;
    seq.prefillTarget = seq.spec.promptTokens + seq.generated;
    seq.state = "waiting";
    // Victims are taken newest first, so pushing each to the front keeps the queue in arrival order.
    this.waiting.pushFront(seq);
    if (seq.aborted) this.abortedWaiting++;
    this.counters.preemptions++;
    this.observer?.onPreemption();
  }

  private endStep(): void {
    this.timer = undefined;
    const now = this.stepEndMs;
    this.simNowMs = now;
    this.counters.steps++;
    let generationTokens = 0;
    let promptTokens = 0;
    let itlCount = 0;
    for (const seq of this.batch) {
      if (seq.aborted) continue;
      if (seq.prefilled < seq.prefillTarget) {
        seq.prefilled += seq.stepTokens;
        if (seq.prefilled < seq.prefillTarget) continue; // more chunks to go, no token yet
        if (seq.spec.promptBlocks !== undefined) this.prefixCache?.insert(seq.spec.promptBlocks);
        if (seq.generated === 0) {
          seq.firstTokenMs = now;
          promptTokens += seq.spec.promptTokens;
        } else this.observer?.onInterTokenLatency(now - seq.lastTokenMs);
      } else if (seq.lastTokenMs === this.stepStartMs) itlCount++;
      else this.observer?.onInterTokenLatency(now - seq.lastTokenMs);
      seq.generated++;
      generationTokens++;
      seq.lastTokenMs = now;
      seq.spec.onToken?.(seq.generated);
      if (seq.generated >= seq.spec.outputTokens) this.finished.push(seq);
    }
    this.batch.length = 0;
    this.counters.generationTokens += generationTokens;
    this.counters.promptTokens += promptTokens;
    this.observer?.onStep({ durationMs: now - this.stepStartMs, generationTokens, promptTokens, itlCount, scheduledTokens: this.stepTokens });
    this.compactRunning();
    const finished = this.finished.splice(0);
    this.startStep(false);
    for (const seq of finished) this.finish(seq, seq.spec.finishReason, now);
    this.notifyWaiters();
  }

  private notifyWaiters(): void {
    if (this.waiters.length === 0) return;
    const stats = this.stats();
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate(stats)) return true;
      w.resolve(stats);
      return false;
    });
  }

  /** Drop finished and aborted sequences from the running list, freeing their KV. O(running). */
  private compactRunning(): void {
    const running = this.running;
    let kept = 0;
    for (let i = 0; i < running.length; i++) {
      const seq = running[i]!;
      const done = seq.aborted || seq.generated >= seq.spec.outputTokens;
      if (!done) {
        running[kept++] = seq;
        continue;
      }
      this.kvUsed -= seq.kvTokens;
      seq.kvTokens = 0;
      seq.state = "done";
      if (seq.aborted) this.finish(seq, "abort"); // finished ones are reported after the next step is scheduled
    }
    running.length = kept;
  }

  private finish(seq: Sequence, outcome: SequenceOutcome, nowMs = this.simNowMs): void {
    if (seq.reported) return;
    seq.reported = true;
    seq.state = "done";
    if (outcome === "abort") this.counters.requestsAborted++;
    else if (outcome === "error") this.counters.requestsFailed++;
    else this.counters.requestsServed++;
    const since = (t: number) => (t < 0 ? -1 : Math.max(0, t - seq.arrivalMs));
    const between = (from: number, to: number) => (from < 0 || to < 0 ? -1 : Math.max(0, to - from));
    const result: SequenceResult = {
      outcome,
      promptTokens: seq.spec.promptTokens,
      outputTokens: seq.generated,
      cachedTokens: seq.cachedTokens,
      queueMs: since(seq.firstScheduledMs),
      ttftMs: since(seq.firstTokenMs),
      e2eMs: since(nowMs),
      prefillMs: between(seq.firstScheduledMs, seq.firstTokenMs),
      decodeMs: between(seq.firstTokenMs, seq.lastTokenMs),
      inferenceMs: between(seq.firstScheduledMs, seq.firstTokenMs < 0 ? -1 : nowMs),
    };
    this.observer?.onFinish(result);
    seq.onDone(result);
  }

  private clearTimer(): void {
    this.timer?.();
    this.timer = undefined;
  }
}
