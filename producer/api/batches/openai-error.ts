/**
 * The files and batches routes' refusals, in the API core's error type (producer/api/errors.ts answers them).
 */
import { ApiError } from "../errors.ts";

export { ApiError, openAiError } from "../errors.ts";

/** A refusal of the request: 4xx, `invalid_request_error`, the parameter at fault. */
export function invalid(status: number, code: string, message: string, param: string | null = null): ApiError {
  return new ApiError(status, { message, type: status === 401 ? "authentication_error" : "invalid_request_error", param, code });
}

/** OpenAI's wording for an id that does not exist (or is another tenant's). */
export function noSuch(kind: "File" | "Batch", id: string, param = "id"): ApiError {
  return invalid(404, "not_found", `No such ${kind} object: ${id}`, param);
}
