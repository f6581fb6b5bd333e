/**
 * The Results API's Prometheus registry: Node's process metrics and one histogram of requests by route template
 * (never the raw URL: ids would make a series per job), method and status class. Served at GET /metrics.
 */
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests = new Histogram({
    name: "api_http_request_duration_seconds",
    help: "Results API requests: time from arrival to the answer sent, by route template, method and status.",
    labelNames: ["route", "method", "status"] as const,
    // Long polls answer in up to API_MAX_WAIT_SECONDS, reads in milliseconds.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Times every request of `app` (hooks on the root instance reach every route). */
  instrument(app: FastifyInstance): void {
    app.addHook("onResponse", async (request, reply) => {
      const route = request.routeOptions.url ?? "unmatched";
      this.requests.observe({ route, method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
  }
}
