/**
 * OpenAI's error shape, `{"error": {message, type, param, code}}`, for the files and batches routes.
 * A stand-in until the API core's producer/api/errors.ts is committed: `openAiError` and `ApiError(status, fields)`
 * have its signatures, so switching is an import change (and plugin.ts's error handler can then go).
 */
import type { FastifyReply } from "fastify";

export interface OpenAiErrorFields {
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
}

export function openAiError(reply: FastifyReply, status: number, e: OpenAiErrorFields): FastifyReply {
  return reply.code(status).send({ error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code ?? null } });
}

/** Thrown by handlers; answered as is. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly fields: OpenAiErrorFields,
  ) {
    super(fields.message);
    this.name = "ApiError";
  }
}

/** A refusal of the request: 4xx, `invalid_request_error`, the parameter at fault. */
export function invalid(status: number, code: string, message: string, param: string | null = null): ApiError {
  return new ApiError(status, { message, type: status === 401 ? "authentication_error" : "invalid_request_error", param, code });
}

/** OpenAI's wording for an id that does not exist (or is another tenant's). */
export function noSuch(kind: "File" | "Batch", id: string, param = "id"): ApiError {
  return invalid(404, "not_found", `No such ${kind} object: ${id}`, param);
}
