/**
 * The worker's view of the job store: concurrent jobs' writes are grouped into batched statements, and a
 * write that fails because Postgres is unreachable is retried with backoff until it lands (or the worker is
 * hard-stopped). While writes fail the store is marked unhealthy, which pauses the poller: no new messages
 * are taken while we cannot record what happens to them, and the held ones keep their heartbeat. Any answer from
 * Postgres (a success, or an error that is the statement's own fault) means it is reachable again: intake resumes.
 * A row the store cannot write fails alone (its own rejection); the rest of its batch is written.
 */
import { Condition } from "./condition.ts";
import { MicroBatcher } from "./micro-batcher.ts";
import { backoffMs, delay } from "../shared/backoff.ts";
import { isRetryable } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { JobStore } from "../shared/store/jobs.ts";

type Method = "claim" | "complete" | "finish" | "release" | "resetDeliveries";
type Item<M extends Method> = Parameters<JobStore[M]>[0][number];
type Out<M extends Method> = Awaited<ReturnType<JobStore[M]>> extends (infer O)[] ? Exclude<O, Error> : void;

export class StoreUnavailableAbort extends Error {
  readonly code = "STORE_WRITE_ABANDONED";
}

export class DurableStore {
  private healthy = true;
  private unhealthySince: number | undefined;
  private readonly changed = new Condition();
  private readonly batchers: { [M in Method]: MicroBatcher<Item<M>, Out<M>> };
  private readonly providerCalls: MicroBatcher<string, void>;

  constructor(
    private readonly store: JobStore,
    private readonly log: Logger,
    /** Aborts retries when the worker is hard-stopped; the message then stays for redelivery. */
    private readonly hardStop: AbortSignal,
    o: { maxBatch?: number; lingerMs?: number; onBatch?: (kind: string, size: number, seconds: number, ok: boolean) => void } = {},
  ) {
    const make = <M extends Method>(m: M) =>
      new MicroBatcher<Item<M>, Out<M>>({
        maxBatch: o.maxBatch ?? 100,
        // A few ms of a generation's seconds buys batches several times larger: fewer statements per job.
        lingerMs: o.lingerMs ?? 5,
        run: (items) => (this.store[m] as (i: Item<M>[]) => Promise<(Out<M> | Error)[] | void>).call(this.store, items),
        onBatch: o.onBatch && ((size, seconds, ok) => o.onBatch!(m, size, seconds, ok)),
      });
    // An audit counter, not on any job's path: a long linger turns a statement per few jobs into one per hundreds.
    this.providerCalls = new MicroBatcher<string, void>({
      maxBatch: 500,
      lingerMs: 50,
      run: (ids) => this.store.recordProviderCall(ids),
      onBatch: o.onBatch && ((size, seconds, ok) => o.onBatch!("provider_calls", size, seconds, ok)),
    });
    this.batchers = { claim: make("claim"), complete: make("complete"), finish: make("finish"), release: make("release"), resetDeliveries: make("resetDeliveries") };
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  /** How long writes have been failing for want of Postgres (0 while healthy). */
  unhealthyForMs(now = Date.now()): number {
    return this.unhealthySince === undefined ? 0 : now - this.unhealthySince;
  }

  /** Resolves when the store is healthy again, or `signal` aborts. */
  waitHealthy(signal: AbortSignal): Promise<void> {
    return this.changed.waitUntil(() => this.healthy, signal);
  }

  claim(item: Item<"claim">): Promise<Out<"claim">> {
    return this.durably("claim", item);
  }
  complete(item: Item<"complete">): Promise<Out<"complete">> {
    return this.durably("complete", item);
  }
  finish(item: Item<"finish">): Promise<Out<"finish">> {
    return this.durably("finish", item);
  }
  release(item: Item<"release">): Promise<Out<"release">> {
    return this.durably("release", item);
  }
  resetDeliveries(id: Item<"resetDeliveries">): Promise<Out<"resetDeliveries">> {
    return this.durably("resetDeliveries", id);
  }

  /** Count a provider call for the audit trail (provider_calls); best effort, never delays or fails the job. */
  noteProviderCall(id: string): void {
    this.providerCalls.add(id).catch(() => undefined);
  }

  async drain(): Promise<void> {
    await Promise.all([...Object.values(this.batchers), this.providerCalls].map((b) => b.drain()));
  }

  private async durably<M extends Method>(method: M, item: Item<M>): Promise<Out<M>> {
    const batcher = this.batchers[method] as MicroBatcher<Item<M>, Out<M>>;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const out = await batcher.add(item);
        this.setHealthy(true);
        return out;
      } catch (err) {
        if (!isRetryable(err)) {
          // Postgres answered: the statement (or this row) is at fault, not the connection.
          this.setHealthy(true);
          throw err;
        }
        if (this.healthy) this.log.warn({ err, method }, "store unavailable; pausing intake and retrying writes");
        this.healthy = false;
        this.unhealthySince ??= Date.now();
        if (this.hardStop.aborted) throw new StoreUnavailableAbort(`store write (${method}) abandoned at hard stop`, { cause: err });
        await delay(backoffMs(attempt, 100, 5_000), this.hardStop);
      }
    }
  }

  private setHealthy(ok: boolean): void {
    if (ok && !this.healthy) this.log.info("store reachable again; resuming intake");
    this.healthy = ok;
    if (ok) {
      this.unhealthySince = undefined;
      this.changed.notify();
    }
  }
}
