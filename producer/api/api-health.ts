/**
 * The Results API's health: ready when Postgres answers (every read and key lookup needs it) and the queue answers
 * (every submit needs it), and the process is not closing. Redis is reported but not required: without it reads
 * go to Postgres and rate limits are per replica. Checks are bounded and cached (ComponentCheck), so probes cost
 * Postgres and SQS at most one call a second each.
 */
import { ComponentCheck, type CheckResult, type ComponentCheckOptions } from "../../shared/health/component-check.ts";
import type { ReadinessReport } from "../../shared/health/ops-routes.ts";
import { queueNameOf } from "../../shared/queue/queue-name.ts";

type Component = Omit<CheckResult, "checkedAt"> & { state: "up" | "down"; checkedAt: string };

export interface ApiHealthReport extends ReadinessReport {
  components: { store: Component; queue: Component & { name: string }; redis?: Component; api: { state: "serving" | "closing"; uptimeS: number } };
}

export interface ApiHealthOptions extends ComponentCheckOptions {
  pingStore: (signal: AbortSignal) => Promise<unknown>;
  queueUrl: string;
  checkQueue: (queueUrl: string, signal: AbortSignal) => Promise<unknown>;
  /** PING on the cache's connection; unset without Redis. */
  pingRedis?: (signal: AbortSignal) => Promise<unknown>;
}

export class ApiHealth {
  private readonly store: ComponentCheck;
  private readonly queue: ComponentCheck;
  private readonly redis?: ComponentCheck;
  private readonly startedAt = Date.now();
  private closing = false;

  constructor(private readonly o: ApiHealthOptions) {
    this.store = new ComponentCheck(o.pingStore, o);
    this.queue = new ComponentCheck((signal) => o.checkQueue(o.queueUrl, signal), o);
    this.redis = o.pingRedis && new ComponentCheck(o.pingRedis, o);
  }

  /** From now on not ready: a load balancer stops sending before the server closes. */
  markClosing(): void {
    this.closing = true;
  }

  async report(): Promise<ApiHealthReport> {
    const [store, queue, redis] = await Promise.all([this.store.result(), this.queue.result(), this.redis?.result()]);
    const failing = [
      ...(store.ok ? [] : [{ component: "store", reason: store.error ?? "DOWN" }]),
      ...(queue.ok ? [] : [{ component: `queue:${queueNameOf(this.o.queueUrl)}`, reason: queue.error ?? "DOWN" }]),
      ...(this.closing ? [{ component: "api", reason: "CLOSING" }] : []),
    ];
    return {
      status: failing.length === 0 ? "ready" : "not_ready",
      checkedAt: new Date().toISOString(),
      failing,
      components: {
        store: component(store),
        queue: { name: queueNameOf(this.o.queueUrl), ...component(queue) },
        ...(redis === undefined ? {} : { redis: component(redis) }),
        api: { state: this.closing ? "closing" : "serving", uptimeS: Math.round((Date.now() - this.startedAt) / 1000) },
      },
    };
  }
}

function component(r: CheckResult): Component {
  return { ...r, state: r.ok ? "up" : "down", checkedAt: new Date(r.checkedAt).toISOString() };
}
