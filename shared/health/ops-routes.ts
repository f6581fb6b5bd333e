/**
 * The probe and metrics routes every deployable serves (the worker's ops server, the Results API):
 *   GET /health/live   200 while the process serves HTTP at all
 *   GET /health/ready  200 when ready, else 503 with what fails
 *   GET /health        the full report; 200 or 503 as /health/ready
 *   GET /metrics       the registry's exposition; 404 without one
 * Registered as an encapsulated plugin: its error handler (a code, never a message) does not leak into the host app.
 */
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import { errorCode } from "../errors.ts";
import type { Logger } from "../logger.ts";

/** The part of a health report the probes need; a deployable's report adds its components. */
export interface ReadinessReport {
  status: "ready" | "not_ready";
  checkedAt: string;
  failing: { component: string; reason: string }[];
}

/** Anything that renders a metrics exposition: a prom-client Registry fits as it is. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface OpsRoutesOptions {
  health: { report(): Promise<ReadinessReport> };
  metrics?: MetricsSource;
  log: Logger;
}

const routes: FastifyPluginAsync<OpsRoutesOptions> = async (app, o) => {
  // Probes arrive every few seconds from every load balancer node: hidden from OpenAPI, never logged per request.
  const hidden = { schema: { hide: true } };
  app.get("/health/live", hidden, async () => ({ status: "live" }));
  app.get("/health/ready", hidden, async (_req, reply) => {
    const report = await o.health.report();
    return reply.code(statusCode(report)).send({ status: report.status, checkedAt: report.checkedAt, failing: report.failing });
  });
  app.get("/health", hidden, async (_req, reply) => {
    const report = await o.health.report();
    return reply.code(statusCode(report)).send(report);
  });
  app.get("/metrics", hidden, async (_req, reply) => {
    if (o.metrics === undefined) return reply.code(404).send({ error: "NO_METRICS", message: "no metrics registry here" });
    return reply.type(o.metrics.contentType).send(await o.metrics.metrics());
  });
  // A failure is answered with its code alone: a message may name a host or carry a connection string.
  app.setErrorHandler((err, _req, reply) => {
    o.log.warn({ code: errorCode(err) }, "ops request failed");
    return reply.code(500).send({ error: errorCode(err) });
  });
};

export function registerOpsRoutes(app: FastifyInstance, o: OpsRoutesOptions): void {
  app.register(routes, o);
}

function statusCode(report: ReadinessReport): number {
  return report.status === "ready" ? 200 : 503;
}
