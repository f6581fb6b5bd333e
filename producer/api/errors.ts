/**
 * Every error the API answers is in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so clients
 * written for OpenAI (the official SDKs among them) read ours: unknown routes, validation, auth, rate limits, and
 * whatever a handler throws. Internal failures are answered without their details (logged instead).
 */
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { FleetError } from "../../shared/errors.ts";

export type OpenAiErrorType = "invalid_request_error" | "authentication_error" | "not_found_error" | "rate_limit_error" | "server_error";

export interface OpenAiErrorFields {
  message: string;
  type: OpenAiErrorType | (string & {});
  param?: string | null;
  code?: string | null;
}

/** The error body's schema, for route responses and the OpenAPI document. */
export const openAiErrorSchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

/** Answer `status` with an OpenAI-shaped error body. */
export function openAiError(reply: FastifyReply, status: number, e: OpenAiErrorFields): FastifyReply {
  return reply.code(status).send({ error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code ?? null } });
}

/** Thrown by hooks and handlers; the error handler answers it as is. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly fields: OpenAiErrorFields,
    readonly headers: Record<string, string> = {},
  ) {
    super(fields.message);
    this.name = "ApiError";
  }
}

export const notFound = (what: string, param: string | null = null): ApiError =>
  new ApiError(404, { message: `No ${what} found`, type: "invalid_request_error", param, code: "not_found" });

/** Fastify's own errors for a body it refused before any handler ran. */
const FRAMEWORK_ERRORS: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: "request_too_large" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: "unsupported_media_type" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: "invalid_content_length" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: "invalid_json" },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: "invalid_json" },
};

/** The error handler and the 404 handler, on the root instance (encapsulated plugins inherit them). */
export function installErrorHandlers(app: FastifyInstance, bodyLimitBytes: number): void {
  app.setNotFoundHandler((request, reply) =>
    openAiError(reply, 404, { message: `Unknown request URL: ${request.method} ${request.url.split("?")[0]}`, type: "invalid_request_error", code: "unknown_url" }),
  );
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) return openAiError(reply.headers(err.headers), err.status, err.fields);
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issue = describeValidation(err.validation[0]!, err.validationContext);
      return openAiError(reply, 400, { message: issue.message, type: "invalid_request_error", param: issue.param, code: issue.code });
    }
    const framework = err.code === undefined ? undefined : FRAMEWORK_ERRORS[err.code];
    if (framework) {
      const message = framework.status === 413 ? `request body is larger than the limit of ${bodyLimitBytes} bytes` : err.message;
      return openAiError(reply, framework.status, { message, type: "invalid_request_error", code: framework.code });
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return openAiError(reply, err.statusCode, { message: err.message, type: "invalid_request_error", code: null });
    }
    const retryable = err instanceof FleetError && err.retryable;
    request.log.error({ err, code: err instanceof FleetError ? err.code : undefined }, "request failed");
    // Details stay in the log: they may name hosts. A retryable failure (store, queue) is a 503 clients retry.
    return openAiError(reply, retryable ? 503 : 500, {
      message: retryable ? "a backing service is unavailable; retry later" : "internal server error",
      type: "server_error",
      code: retryable ? "service_unavailable" : "internal_error",
    });
  });
}

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/**
 * The first problem, with `param` naming the field (`messages[0].content`, `[3].prompt` in a list, `wait`).
 * A body that is one job or a list fails as a union: the branch matching the body's own type is the one reported.
 */
export function describeValidation(issue: ValidationIssue, context: string | undefined): { message: string; param: string | null; code: string } {
  let path = issue.instancePath.split("/").slice(1).filter((p) => p !== "");
  let zodIssue: { code: string; message: string; path: PropertyKey[]; keys?: string[]; input?: unknown } = {
    code: issue.keyword,
    message: issue.message ?? "invalid value",
    path,
    ...(issue.params as { keys?: string[]; input?: unknown }),
  };
  const branches = issue.keyword === "invalid_union" ? (issue.params.errors as (typeof zodIssue)[][] | undefined) : undefined;
  if (branches) {
    const branch = branches.find((b) => !(b.length === 1 && b[0]!.code === "invalid_type" && b[0]!.path.length === 0)) ?? branches[0];
    if (branch?.[0]) {
      zodIssue = branch[0];
      path = [...path, ...branch[0].path.map(String)];
    }
  }
  if (zodIssue.code === "unrecognized_keys" && zodIssue.keys?.[0] !== undefined) path = [...path, zodIssue.keys[0]];
  const param = formatPath(path) || (context === "body" ? null : context ?? null);
  const missing = zodIssue.code === "invalid_type" && zodIssue.message.endsWith("received undefined");
  const code = zodIssue.code === "unrecognized_keys" ? "unknown_parameter" : missing ? "missing_required_parameter" : "invalid_value";
  const where = param === null ? "request body" : `'${param}'`;
  return { message: `Invalid ${where}: ${zodIssue.message}`, param, code };
}

/** ["messages","0","content"] → "messages[0].content"; ["3","prompt"] → "[3].prompt". */
function formatPath(path: string[]): string {
  return path.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}
