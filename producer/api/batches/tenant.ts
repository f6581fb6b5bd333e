/**
 * The tenant the API core's auth hook put on the request. Read without relying on its type declaration, so these
 * routes build alone; a request that reaches them without one was never authenticated (a wiring fault) and is
 * refused, never served as nobody's.
 */
import type { FastifyRequest } from "fastify";
import { invalid } from "./openai-error.ts";

export function requestTenant(request: FastifyRequest): string {
  const tenant = (request as FastifyRequest & { tenant?: unknown }).tenant;
  if (typeof tenant !== "string" || tenant === "") throw invalid(401, "invalid_api_key", "no tenant on this request: authentication is required", null);
  return tenant;
}
