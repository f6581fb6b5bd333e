/**
 * The Results API as a Fastify instance (not listening: main.ts listens, tests use `inject` or a port of their
 * own). Requests and responses are validated against zod schemas built from the queue contract; the same schemas
 * make `GET /openapi.json`. Everything under `/v1` is authenticated (auth.ts) and rate limited (rate-limit.ts)
 * before any route plugin of V1_PLUGINS runs. Errors are OpenAI-shaped (errors.ts).
 */
import fastifySwagger from "@fastify/swagger";
import Fastify, { LogController, type FastifyInstance } from "fastify";
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { registerOpsRoutes } from "../../shared/health/ops-routes.ts";
import type { ApiDeps, ApiPlugin } from "./api-deps.ts";
import { KeyAuthenticator } from "./auth.ts";
import { installErrorHandlers } from "./errors.ts";
import { jobRoutes } from "./job-routes.ts";
import { batchRoutes } from "./batches/plugin.ts";

export type { ApiDeps, ApiPlugin } from "./api-deps.ts";

/** Route plugins under `/v1`, registered in this order as `app.register(plugin, { deps })`. */
export const V1_PLUGINS: readonly ApiPlugin[] = [jobRoutes, async (app, { deps }) => app.register(batchRoutes, { pool: deps.pool })];

export function buildApi(deps: ApiDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log,
    bodyLimit: deps.config.bodyLimitBytes,
    // One log line per request would cost more than the request (GET by id); failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app, deps.config.bodyLimitBytes);
  app.decorateRequest("tenant", "");
  app.decorateRequest("apiKeyId", "");

  app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "llm-fleet Results API", version: "1", description: "Submit LLM jobs and read their results by id. Errors use OpenAI's shape." },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "`Authorization: Bearer sk-fleet-...` (make keys)" } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  if (deps.ops) {
    deps.ops.metrics.instrument(app);
    registerOpsRoutes(app, { health: deps.ops.health, metrics: deps.ops.metrics.registry, log: deps.log });
  }

  const auth = new KeyAuthenticator(deps.keys, deps.config.keyCacheTtlMs);
  app.register(
    async (v1) => {
      v1.addHook("onRequest", auth.hook);
      if (deps.limiter) v1.addHook("onRequest", deps.limiter.hook);
      for (const plugin of V1_PLUGINS) await v1.register(plugin, { deps });
    },
    { prefix: "/v1" },
  );
  let closing = false;
  // Long polls answer at once with what they have, so closing never waits out a 60 s wait.
  app.addHook("preClose", async () => {
    closing = true;
    deps.ops?.health.markClosing();
    deps.feed.close();
  });
  // An answer sent while closing also closes its connection: left idle in keep-alive, it would hold close() for the
  // keep-alive timeout (72 s; only connections idle when close() began are dropped at once).
  app.addHook("onSend", async (_request, reply) => {
    if (closing) reply.header("connection", "close");
  });
  return app;
}
