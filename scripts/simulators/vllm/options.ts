/**
 * The simulator's options: one typed object, defaults from a profile, parsed once from CLI flags and env at the edge
 * (`parseSimulatorOptions`), checked across fields (`resolveSimulatorOptions`). Precedence: profile < env < flags.
 */
import { ConfigError } from "../../../shared/errors.ts";
import { DEFAULT_PROFILE, PROFILES, isProfileName, type EngineProfile, type ProfileName } from "./profiles.ts";

/** An injected failure: an HTTP status (400-599, vLLM error body) or "reset" (socket destroyed, no response). */
export type FaultKind = number | "reset";

export interface FaultOptions {
  /** Fraction 0-1 of completion requests answered with an injected error instead of being served. Default 0. */
  errorRate: number;
  /** Kinds injected, picked uniformly. Default [500, 503, 429, "reset"]. */
  errorKinds: FaultKind[];
  /** Fraction 0-1 of served completion responses held back `stallMs` before being written. Default 0. */
  stallRate: number;
  /** How long a stalled response is held, in wall-clock ms (not scaled by timeScale). Default 30000. */
  stallMs: number;
  /**
   * vLLM's engine core died: requests in flight fail (a bare 500; a stream, an error line) and the server stops
   * listening, as vLLM's API server exits (connection refused) — the Ollama and Gemini routes with it, being the same
   * process. Setting it back to false restarts the server on the same port. Default false.
   */
  engineDead: boolean;
  /**
   * Fraction 0-1 of choices whose text contains U+0000 (a model emitting the byte token <0x00>). Default 0.
   * Independently of it, a prompt containing the marker `<nul>` always gets one.
   */
  nulAnswerRate: number;
  // Gemini's own failures (gemini-api.ts). Optional so a FaultOptions literal written for vLLM stays valid;
  // resolved options always carry them. Drawn from their own seeded stream, after errorRate's.
  /** Fraction 0-1 of generateContent answered 429 RESOURCE_EXHAUSTED: per-minute QuotaFailure + RetryInfo. Default 0. */
  geminiRateLimitRate?: number;
  /** RetryInfo.retryDelay of those 429s, seconds, fractional (sent as "45.837906927s"). Default 45.837906927. */
  geminiRetryDelaySeconds?: number;
  /** Fraction 0-1 answered 429 with a per-day QuotaFailure (GenerateRequestsPerDayPerProjectPerModel). Default 0. */
  geminiDailyQuotaRate?: number;
  /** Fraction 0-1 of answers withheld with finishReason SAFETY (no content). Default 0. */
  geminiSafetyRate?: number;
  /** Fraction 0-1 of prompts refused: promptFeedback.blockReason SAFETY, no candidates. Default 0. */
  geminiPromptBlockRate?: number;
  /**
   * Fraction 0-1 of streamed Ollama generations cut halfway by an `{"error"}` line (HTTP 200 already sent). Default 0.
   * Optional so fault sets written before the Ollama API existed still type-check; resolved options always have it.
   */
  ollamaStreamErrorRate?: number;
  /** Ollama's runner process died: /api/chat and /api/generate answer 500, the Ollama server itself stays up. Default false. */
  ollamaRunnerDead?: boolean;
}

export interface SimulatorOptions extends Omit<EngineProfile, "instant"> {
  /** Bind address. Default 127.0.0.1. */
  host: string;
  /** TCP port; 0 picks an ephemeral one. Default 8000. */
  port: number;
  /** Profile the engine defaults came from. Default llama-3.1-8b-h100. */
  profile: ProfileName;
  /** Waiting requests beyond which new ones get 503 (vLLM `--max-num-queued-reqs`); 0 = unbounded. Default 0. */
  maxNumQueuedReqs: number;
  /** Require `Authorization: Bearer <apiKey>` on /v1/* like vLLM's --api-key (401 otherwise). Default: none. */
  apiKey?: string;
  /** Seed of the deterministic text/length generator and of fault injection. Default 0. */
  seed: number;
  /** Wall-clock ms per simulated ms: 0.01 runs the engine 100× faster. Metrics report simulated time. Default 1. */
  timeScale: number;
  /** Fraction 0-1 of requests with max_tokens that stop early (finish_reason "stop"). Default 0.2. */
  earlyStopRate: number;
  /** Mean output length when a request sets no max_tokens (lengths uniform in 1..2×mean). Default 256. */
  meanOutputTokens: number;
  /** Keep the last N generation requests (id, start, end, outcome) for GET /debug/requests; 0 = off. Default 0. */
  requestLog: number;
  /** Model served at /v1beta/models/{model}:generateContent (Gemini's API); others get 404. Default gemini-2.5-flash. */
  geminiModel: string;
  /** Require this in `x-goog-api-key` on /v1beta/* (missing → 403, wrong → 400 API_KEY_INVALID, as Google answers). Default: none. */
  geminiApiKey?: string;
  /** Tokens a Gemini answer spends thinking first: inside maxOutputTokens, reported as thoughtsTokenCount. Default 0. */
  geminiThinkingTokens: number;
  /** The tag the Ollama API (/api/*) serves and lists in /api/tags. Default llama3.1:8b. */
  ollamaModel: string;
  /** Ollama's OLLAMA_MAX_QUEUE: waiting requests beyond which /api/chat and /api/generate answer 503. Default 512. */
  ollamaMaxQueue: number;
  faults: FaultOptions;
}

export const DEFAULT_FAULTS: FaultOptions = {
  errorRate: 0,
  errorKinds: [500, 503, 429, "reset"],
  stallRate: 0,
  stallMs: 30_000,
  engineDead: false,
  nulAnswerRate: 0,
  geminiRateLimitRate: 0,
  geminiRetryDelaySeconds: 45.837906927,
  geminiDailyQuotaRate: 0,
  geminiSafetyRate: 0,
  geminiPromptBlockRate: 0,
  ollamaStreamErrorRate: 0,
  ollamaRunnerDead: false,
};

/** ~100 bytes an entry: a million is ~100 MB, past any audit's need. */
const MAX_REQUEST_LOG = 1_000_000;

/** Full options from a partial: profile defaults first (engine fields), then the caller's values. Throws ConfigError. */
export function resolveSimulatorOptions(partial: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const profileName = partial.profile ?? DEFAULT_PROFILE;
  if (!isProfileName(profileName)) throw new ConfigError([`profile: unknown "${String(profileName)}" (known: ${Object.keys(PROFILES).join(", ")})`]);
  const { instant: _instant, ...profile } = PROFILES[profileName];
  const defined = withoutUndefined(partial);
  const options: SimulatorOptions = {
    host: "127.0.0.1",
    port: 8000,
    maxNumQueuedReqs: 0,
    seed: 0,
    timeScale: 1,
    earlyStopRate: 0.2,
    meanOutputTokens: 256,
    requestLog: 0,
    geminiModel: "gemini-2.5-flash",
    geminiThinkingTokens: 0,
    ollamaModel: "llama3.1:8b",
    ollamaMaxQueue: 512,
    ...profile,
    ...defined,
    profile: profileName,
    faults: { ...DEFAULT_FAULTS, ...withoutUndefined(partial.faults ?? {}) },
  };
  const issues = checkOptions(options);
  if (issues.length > 0) throw new ConfigError(issues);
  return options;
}

/** `{ x: undefined }` means "not given": it must not replace a default. */
function withoutUndefined<T extends object>(partial: T): Partial<T> {
  return Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function isInstant(options: SimulatorOptions): boolean {
  return PROFILES[options.profile].instant;
}

/** Cross-field and range rules; returns every problem found. */
function checkOptions(o: SimulatorOptions): string[] {
  const issues: string[] = [];
  const need = (ok: boolean, message: string) => {
    if (!ok) issues.push(message);
  };
  const intAtLeast = (name: keyof SimulatorOptions, min: number) => {
    const v = o[name];
    need(typeof v === "number" && Number.isInteger(v) && v >= min, `${name}: must be an integer >= ${min}`);
  };
  const nonNegative = (name: string, v: number) => need(Number.isFinite(v) && v >= 0, `${name}: must be a number >= 0`);
  const fraction = (name: string, v: number) => need(Number.isFinite(v) && v >= 0 && v <= 1, `${name}: must be between 0 and 1`);
  intAtLeast("port", 0);
  need(o.port <= 65_535, "port: must be <= 65535");
  need(o.host.length > 0 && o.model.length > 0, "host and model: must not be empty");
  intAtLeast("maxNumSeqs", 1);
  intAtLeast("maxNumBatchedTokens", 1);
  intAtLeast("maxModelLen", 2);
  intAtLeast("kvCapacityTokens", 1);
  intAtLeast("maxNumQueuedReqs", 0);
  intAtLeast("seed", 0);
  intAtLeast("meanOutputTokens", 1);
  intAtLeast("requestLog", 0);
  intAtLeast("ollamaMaxQueue", 0);
  need(o.ollamaModel.length > 0, "ollamaModel: must not be empty");
  need(o.requestLog <= MAX_REQUEST_LOG, `requestLog: must be <= ${MAX_REQUEST_LOG}`);
  for (const name of ["stepOverheadMs", "stepPerSeqMs", "stepWeightsReadMs", "stepPerTokenComputeMs", "stepPerContextTokenMs"] as const) {
    nonNegative(name, o[name]);
  }
  need(Number.isFinite(o.stepJitter) && o.stepJitter >= 0 && o.stepJitter < 1, "stepJitter: must be a number >= 0 and < 1");
  need(Number.isFinite(o.timeScale) && o.timeScale > 0, "timeScale: must be a number > 0");
  fraction("earlyStopRate", o.earlyStopRate);
  // A request of max_model_len tokens must fit in the KV cache on its own, or it could never be scheduled.
  need(o.maxModelLen <= o.kvCapacityTokens, `maxModelLen (${o.maxModelLen}) must be <= kvCapacityTokens (${o.kvCapacityTokens})`);
  fraction("faults.errorRate", o.faults.errorRate);
  fraction("faults.stallRate", o.faults.stallRate);
  fraction("faults.nulAnswerRate", o.faults.nulAnswerRate);
  need(/^[a-zA-Z0-9._-]+$/.test(o.geminiModel), "geminiModel: must be one path segment of letters, digits, '.', '_' or '-'");
  intAtLeast("geminiThinkingTokens", 0);
  fraction("faults.geminiRateLimitRate", o.faults.geminiRateLimitRate ?? 0);
  fraction("faults.geminiDailyQuotaRate", o.faults.geminiDailyQuotaRate ?? 0);
  fraction("faults.geminiSafetyRate", o.faults.geminiSafetyRate ?? 0);
  fraction("faults.geminiPromptBlockRate", o.faults.geminiPromptBlockRate ?? 0);
  nonNegative("faults.geminiRetryDelaySeconds", o.faults.geminiRetryDelaySeconds ?? 0);
  fraction("faults.ollamaStreamErrorRate", o.faults.ollamaStreamErrorRate ?? 0);
  nonNegative("faults.stallMs", o.faults.stallMs);
  need(o.faults.errorKinds.length > 0 || o.faults.errorRate === 0, "faults.errorKinds: must not be empty when errorRate > 0");
  for (const kind of o.faults.errorKinds) {
    need(kind === "reset" || (Number.isInteger(kind) && kind >= 400 && kind <= 599), `faults.errorKinds: "${kind}" is not 400-599 or "reset"`);
  }
  return issues;
}

// ---- CLI / env ---------------------------------------------------------------------------------------------------

type Kind = "int" | "number" | "string" | "bool" | "kinds";
interface OptionSpec {
  flag: string;
  key: string;
  kind: Kind;
  help: string;
  /** Lives under options.faults. */
  fault?: true;
}

const SPECS: OptionSpec[] = [
  { flag: "host", key: "host", kind: "string", help: "bind address (default 127.0.0.1)" },
  { flag: "port", key: "port", kind: "int", help: "port, 0 = ephemeral (default 8000)" },
  { flag: "profile", key: "profile", kind: "string", help: `engine defaults: ${Object.keys(PROFILES).join(" | ")} (default ${DEFAULT_PROFILE})` },
  { flag: "model", key: "model", kind: "string", help: "served model name (default: the profile's)" },
  { flag: "max-num-seqs", key: "maxNumSeqs", kind: "int", help: "max sequences per batch" },
  { flag: "max-num-batched-tokens", key: "maxNumBatchedTokens", kind: "int", help: "token budget per step (decodes + prefill chunks)" },
  { flag: "max-model-len", key: "maxModelLen", kind: "int", help: "max prompt + max_tokens per request (over → 400)" },
  { flag: "kv-capacity-tokens", key: "kvCapacityTokens", kind: "int", help: "KV cache size in tokens (full → no admission, preemption)" },
  { flag: "step-overhead-ms", key: "stepOverheadMs", kind: "number", help: "fixed CPU/launch cost of every step, ms" },
  { flag: "step-per-seq-ms", key: "stepPerSeqMs", kind: "number", help: "step cost per scheduled sequence, ms" },
  { flag: "step-weights-read-ms", key: "stepWeightsReadMs", kind: "number", help: "streaming every weight from HBM once: a step's floor, ms" },
  { flag: "step-per-token-compute-ms", key: "stepPerTokenComputeMs", kind: "number", help: "linear-layer FLOPs of one scheduled token, ms (beyond the weight read)" },
  { flag: "step-per-context-token-ms", key: "stepPerContextTokenMs", kind: "number", help: "attention's read of one KV token of the batch, ms" },
  { flag: "step-jitter", key: "stepJitter", kind: "number", help: "each step lasts 1 ± this times the model (seeded; default 0.03)" },
  { flag: "enable-prefix-caching", key: "enablePrefixCaching", kind: "bool", help: "automatic prefix caching (default true; false to turn it off)" },
  { flag: "max-num-queued-reqs", key: "maxNumQueuedReqs", kind: "int", help: "waiting-queue cap, over → 503; 0 = unbounded (default 0)" },
  { flag: "api-key", key: "apiKey", kind: "string", help: "require this bearer token on /v1/* (default none)" },
  { flag: "seed", key: "seed", kind: "int", help: "seed for output text, lengths and faults (default 0)" },
  { flag: "time-scale", key: "timeScale", kind: "number", help: "wall ms per simulated ms, 0.01 = 100x faster (default 1)" },
  { flag: "early-stop-rate", key: "earlyStopRate", kind: "number", help: "fraction of requests stopping before max_tokens (default 0.2)" },
  { flag: "mean-output-tokens", key: "meanOutputTokens", kind: "int", help: "mean output length without max_tokens (default 256)" },
  { flag: "request-log", key: "requestLog", kind: "int", help: "keep the last N generation requests for GET /debug/requests; 0 = off (default 0)" },
  { flag: "gemini-model", key: "geminiModel", kind: "string", help: "model served by the Gemini API at /v1beta (default gemini-2.5-flash)" },
  { flag: "gemini-api-key", key: "geminiApiKey", kind: "string", help: "require this x-goog-api-key on /v1beta/* (default none)" },
  { flag: "gemini-thinking-tokens", key: "geminiThinkingTokens", kind: "int", help: "thinking tokens per Gemini answer, inside maxOutputTokens (default 0)" },
  { flag: "ollama-model", key: "ollamaModel", kind: "string", help: "tag served by the Ollama API /api/* (default llama3.1:8b)" },
  { flag: "ollama-max-queue", key: "ollamaMaxQueue", kind: "int", help: "OLLAMA_MAX_QUEUE: waiting requests beyond which /api/* answers 503 (default 512)" },
  { flag: "error-rate", key: "errorRate", kind: "number", fault: true, help: "fraction 0-1 of completions answered with an injected error (default 0)" },
  { flag: "error-kinds", key: "errorKinds", kind: "kinds", fault: true, help: "comma list of statuses and/or reset (default 500,503,429,reset)" },
  { flag: "stall-rate", key: "stallRate", kind: "number", fault: true, help: "fraction 0-1 of responses held back (default 0)" },
  { flag: "stall-ms", key: "stallMs", kind: "number", fault: true, help: "how long a stalled response is held, wall ms (default 30000)" },
  { flag: "nul-answer-rate", key: "nulAnswerRate", kind: "number", fault: true, help: "fraction 0-1 of answers containing U+0000; a prompt with <nul> always gets one (default 0)" },
  { flag: "gemini-rate-limit-rate", key: "geminiRateLimitRate", kind: "number", fault: true, help: "fraction 0-1 of Gemini calls answered 429 with RetryInfo (default 0)" },
  { flag: "gemini-retry-delay-seconds", key: "geminiRetryDelaySeconds", kind: "number", fault: true, help: "RetryInfo.retryDelay of those 429s, fractional seconds (default 45.837906927)" },
  { flag: "gemini-daily-quota-rate", key: "geminiDailyQuotaRate", kind: "number", fault: true, help: "fraction 0-1 of Gemini calls answered 429 with a per-day QuotaFailure (default 0)" },
  { flag: "gemini-safety-rate", key: "geminiSafetyRate", kind: "number", fault: true, help: "fraction 0-1 of Gemini answers withheld, finishReason SAFETY (default 0)" },
  { flag: "gemini-prompt-block-rate", key: "geminiPromptBlockRate", kind: "number", fault: true, help: "fraction 0-1 of Gemini prompts blocked, promptFeedback.blockReason SAFETY (default 0)" },
  { flag: "ollama-stream-error-rate", key: "ollamaStreamErrorRate", kind: "number", fault: true, help: "fraction 0-1 of streamed Ollama answers cut by an {\"error\"} line (default 0)" },
  { flag: "engine-dead", key: "engineDead", kind: "bool", fault: true, help: "start with a dead engine: nothing listens (vLLM exits when its engine dies)" },
  { flag: "ollama-runner-dead", key: "ollamaRunnerDead", kind: "bool", fault: true, help: "Ollama's runner is dead: /api/chat and /api/generate answer 500" },
];

const envName = (spec: OptionSpec) => `VLLM_SIM_${spec.flag.toUpperCase().replaceAll("-", "_")}`;

export function simulatorHelp(): string {
  const lines = SPECS.map((s) => `  --${s.flag.padEnd(26)} ${envName(s).padEnd(36)} ${s.help}`);
  return ["vLLM simulator: OpenAI-compatible API, vLLM scheduling and /metrics without a GPU; Gemini's generateContent and Ollama's native /api/* on the same engine.", "", "  flag                         env", ...lines, "  --help"].join("\n");
}

/** Options from argv (without node and script) and env. Throws ConfigError naming every bad flag or variable. */
export function parseSimulatorOptions(argv: readonly string[], env: Record<string, string | undefined>): SimulatorOptions {
  const raw = new Map<OptionSpec, { value: string; source: string }>();
  const issues: string[] = [];
  for (const spec of SPECS) {
    const value = env[envName(spec)];
    if (value !== undefined && value !== "") raw.set(spec, { value, source: envName(spec) });
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    const spec = match ? SPECS.find((s) => s.flag === match[1]) : undefined;
    if (!match || !spec) {
      issues.push(`${arg}: unknown argument (see --help)`);
      continue;
    }
    let value = match[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (spec.kind === "bool" && (next === undefined || next.startsWith("--"))) value = "true";
      else if (next === undefined) {
        issues.push(`--${spec.flag}: needs a value`);
        continue;
      } else {
        value = next;
        i++;
      }
    }
    raw.set(spec, { value, source: `--${spec.flag}` });
  }
  const top: Record<string, unknown> = {};
  const faults: Record<string, unknown> = {};
  for (const [spec, { value, source }] of raw) {
    const parsed = convert(spec.kind, value);
    if (parsed === undefined) issues.push(`${source}: "${value}" is not a valid ${spec.kind}`);
    else (spec.fault ? faults : top)[spec.key] = parsed;
  }
  try {
    const options = resolveSimulatorOptions({ ...(top as Partial<SimulatorOptions>), faults: faults as Partial<FaultOptions> as FaultOptions });
    if (issues.length === 0) return options;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues); // range and cross-field problems of the values that did parse
  }
  throw new ConfigError(issues);
}

function convert(kind: Kind, value: string): unknown {
  switch (kind) {
    case "string":
      return value;
    case "int":
      return /^-?\d+$/.test(value) ? Number(value) : undefined;
    case "number": {
      const n = Number(value);
      return value.trim() !== "" && Number.isFinite(n) ? n : undefined;
    }
    case "bool":
      return ["true", "1", "yes"].includes(value) ? true : ["false", "0", "no"].includes(value) ? false : undefined;
    case "kinds": {
      const kinds = value.split(",").map((k) => k.trim()).filter(Boolean);
      const out: FaultKind[] = [];
      for (const k of kinds) {
        if (k === "reset") out.push("reset");
        else if (/^\d{3}$/.test(k)) out.push(Number(k));
        else return undefined;
      }
      return out;
    }
  }
}
