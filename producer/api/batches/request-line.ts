/**
 * The checks made on each input line while its upload streams in. Two kinds of problem, kept apart because they
 * end differently:
 * - a LINE error (not UTF-8/JSON/an object, custom_id missing or bad, method not POST, url not a batch endpoint,
 *   body not an object) means the file is not what the batch API takes: a batch over it fails at `validating`,
 *   with `errors.data[]` naming each line, and nothing runs. Duplicate custom_ids and a url other than the batch's
 *   endpoint are the same kind, found at validation (they need the whole file, or the batch).
 * - a REQUEST error (the body asks for something our job contract refuses: an unsupported field, an empty message,
 *   temperature 7) fails that request only: it goes to the error file as a 400 and the other lines run, as
 *   OpenAI reports a request its model refuses.
 */
import { contractProblem } from "./batch-job.ts";
import { bodyJob, isBatchEndpoint, type LineProblem } from "./openai-body.ts";

/** OpenAI does not document one; long enough for any key a pipeline makes, short enough to keep in job metadata. */
export const MAX_CUSTOM_ID_CHARS = 512;

export type LineCheck =
  | { kind: "blank" }
  | { kind: "request"; customId: string | null; url: string | null; lineError?: LineProblem; requestError?: LineProblem };

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function checkLine(data: Buffer, line: number, tenant: string): LineCheck {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return lineError(null, null, "invalid_json_line", `line ${line} is not valid UTF-8`, null);
  }
  if (text.trim() === "") return { kind: "blank" };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return lineError(null, null, "invalid_json_line", `line ${line} is not valid JSON`, null);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return lineError(null, null, "invalid_json_line", `line ${line} is not a JSON object`, null);
  const { custom_id: customId, method, url, body } = raw as Record<string, unknown>;
  const storableUrl = typeof url === "string" && !url.includes("\u0000") ? url : null;
  if (typeof customId !== "string" || customId === "") {
    return lineError(null, storableUrl, "missing_required_parameter", `line ${line}: 'custom_id' must be a non-empty string`, "custom_id");
  }
  if (customId.length > MAX_CUSTOM_ID_CHARS || customId.includes("\u0000")) {
    return lineError(null, storableUrl, "invalid_value", `line ${line}: 'custom_id' must be at most ${MAX_CUSTOM_ID_CHARS} characters, without U+0000`, "custom_id");
  }
  if (method !== "POST") return lineError(customId, storableUrl, "invalid_value", `line ${line}: 'method' must be "POST"`, "method");
  if (!isBatchEndpoint(url)) return lineError(customId, storableUrl, "invalid_url", `line ${line}: 'url' must be /v1/chat/completions or /v1/completions`, "url");
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return lineError(customId, url, "invalid_type", `line ${line}: 'body' must be a JSON object`, "body");
  }
  const mapped = bodyJob(url, body as Record<string, unknown>);
  const requestError = "problem" in mapped ? mapped.problem : contractProblem(tenant, line, customId, mapped.job);
  return { kind: "request", customId, url, ...(requestError ? { requestError } : {}) };
}

function lineError(customId: string | null, url: string | null, code: string, message: string, param: string | null): LineCheck {
  return { kind: "request", customId, url, lineError: { code, message, param } };
}
