/**
 * The ops server every worker runs when OPS_PORT is set (always in the demo): probes for a load balancer or an
 * orchestrator, the full health report for a person, and Prometheus metrics (routes: shared/health/ops-routes.ts).
 *   GET /health/live   200 while the process serves HTTP at all
 *   GET /health/ready  200 when ready (see health.ts), else 503 with what fails
 *   GET /health        the report: every component with its state and latency; 200 or 503 as /health/ready
 *   GET /metrics       the registry's exposition; 404 when the worker has none
 * It is closed after the drain, so a load balancer sees ready = 503 for the whole drain. Other routes (the API of
 * issue 10) can be added through `register` before it listens.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { registerOpsRoutes, type MetricsSource } from "../shared/health/ops-routes.ts";
import type { Logger } from "../shared/logger.ts";
import type { HealthReport } from "./health.ts";

export type { MetricsSource } from "../shared/health/ops-routes.ts";

export interface OpsServerOptions {
  host: string;
  /** 0 takes a free port. */
  port: number;
  health: { report(): Promise<HealthReport> };
  metrics?: MetricsSource;
  /** Adds routes before the server listens. */
  register?: (app: FastifyInstance) => void;
  log: Logger;
}

export interface OpsServer {
  app: FastifyInstance;
  port: number;
  /** A URL this host can reach it on (loopback when bound to every address). */
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  // No request logging: probes arrive every few seconds from every load balancer node.
  const app = Fastify({ logger: false, forceCloseConnections: "idle" });
  registerOpsRoutes(app, { health: o.health, metrics: o.metrics, log: o.log });
  o.register?.(app);
  await app.listen({ host: o.host, port: o.port });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : o.port;
  const url = `http://${reachableHost(o.host)}:${port}`;
  o.log.info({ url, port }, "ops server listening");
  let closing: Promise<void> | undefined;
  return { app, port, url, close: () => (closing ??= app.close()) };
}

function reachableHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}
