/**
 * The OpenAI Batch API (files + batches) as one Fastify plugin; register it under `/v1` after the auth hook that
 * sets `request.tenant`. The runner that moves batches along is separate (runner.ts): start one per API process.
 */
import multipart from "@fastify/multipart";
// Route schemas carry OpenAPI fields (summary, consumes) that @fastify/swagger declares on FastifySchema.
import type {} from "@fastify/swagger";
import type { FastifyPluginAsync } from "fastify";
import type pg from "pg";
import { FileStore } from "../files/file-store.ts";
import { registerFileRoutes } from "../files/routes.ts";
import { OPENAI_UPLOAD_LIMITS, type UploadLimits } from "../files/upload.ts";
import { BatchStore } from "./batch-store.ts";
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
  const files = new FileStore(o.pool);
  registerFileRoutes(app, { pool: o.pool, files, limits: { ...OPENAI_UPLOAD_LIMITS, ...o.limits } });
  registerBatchRoutes(app, new BatchStore(o.pool));
};
