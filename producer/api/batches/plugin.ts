/**
 * The OpenAI Batch API (files + batches) as one Fastify plugin; register it under `/v1` after the auth hook that
 * sets `request.tenant`. The runner that moves batches along is separate (runner.ts): start one per API process.
 */
import multipart from "@fastify/multipart";
// Route schemas carry OpenAPI fields (summary, consumes) that @fastify/swagger declares on FastifySchema.
import type {} from "@fastify/swagger";
import type { FastifyError, FastifyPluginAsync } from "fastify";
import { hasZodFastifySchemaValidationErrors, validatorCompiler } from "fastify-type-provider-zod";
import type pg from "pg";
import { FleetError } from "../../../shared/errors.ts";
import { FileStore } from "../files/file-store.ts";
import { registerFileRoutes } from "../files/routes.ts";
import { OPENAI_UPLOAD_LIMITS, type UploadLimits } from "../files/upload.ts";
import { BatchStore } from "./batch-store.ts";
import { ApiError, openAiError } from "./openai-error.ts";
import { registerBatchRoutes } from "./routes.ts";

export interface BatchRoutesOptions {
  /** The pool for files, batches and the jobs table (progress); an upload holds one connection while it streams. */
  pool: pg.Pool;
  /** OpenAI's limits unless overridden (tests use small ones). */
  limits?: Partial<UploadLimits>;
}

export const batchRoutes: FastifyPluginAsync<BatchRoutesOptions> = async (app, o) => {
  // The API core may have registered multipart for the whole server already; a second registration would throw.
  if (!app.hasContentTypeParser("multipart/form-data")) await app.register(multipart);
  app.setValidatorCompiler(validatorCompiler);
  // The same mapping as the API core's root error handler (producer/api/errors.ts); this one goes once that is in.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof ApiError) return openAiError(reply, err.status, err.fields);
    if (hasZodFastifySchemaValidationErrors(err)) {
      const first = err.validation[0];
      const param = first?.instancePath.replace(/^\//, "").replace(/\//g, ".") || null;
      return openAiError(reply, 400, { message: `${param ?? err.validationContext ?? "request"}: ${first?.message ?? "invalid"}`, type: "invalid_request_error", param, code: "invalid_value" });
    }
    // Multipart and body-parser refusals (413 too large, 406 not multipart…) keep their status.
    if (typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 500) {
      return openAiError(reply, err.statusCode, { message: err.message, type: "invalid_request_error", param: null, code: err.code?.toLowerCase() ?? null });
    }
    const unavailable = err instanceof FleetError && err.retryable;
    req.log.error({ err }, "files/batches request failed");
    return openAiError(reply, unavailable ? 503 : 500, { message: unavailable ? "the service is unavailable; retry later" : "internal error", type: "server_error", param: null, code: null });
  });
  const files = new FileStore(o.pool);
  registerFileRoutes(app, { pool: o.pool, files, limits: { ...OPENAI_UPLOAD_LIMITS, ...o.limits } });
  registerBatchRoutes(app, new BatchStore(o.pool));
};
