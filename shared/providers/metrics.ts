/**
 * Reading vLLM's load from its Prometheus `/metrics` text: requests running and waiting, KV-cache use. The
 * worker uses it to keep vLLM's waiting queue short (adaptive concurrency).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What vLLM is doing now, summed over every label set (model, engine / data-parallel rank). */
export interface VllmLoad {
  running: number;
  waiting: number;
  /**
   * KV-cache use, 0–1, of the fullest engine: a fraction cannot be summed across engines, and the fullest one
   * is the one that starts preempting. Absent when the server does not export it.
   */
  kvCacheUsage?: number;
}

const RUNNING = "vllm:num_requests_running";
const WAITING = "vllm:num_requests_waiting";
const KV_CACHE = "vllm:kv_cache_usage_perc";
/** The name before vLLM 0.12 renamed it. */
const KV_CACHE_OLD = "vllm:gpu_cache_usage_perc";

/** The load in a /metrics page; undefined when the page lacks the request gauges (not vLLM, or not metrics). */
export function readVllmLoad(text: string): VllmLoad | undefined {
  // Only the four gauges are parsed: a vLLM page is mostly histogram buckets we do not need.
  const samples = parsePrometheusText(text, [RUNNING, WAITING, KV_CACHE, KV_CACHE_OLD]);
  const running = sumOf(samples, RUNNING);
  const waiting = sumOf(samples, WAITING);
  if (running === undefined || waiting === undefined) return undefined;
  const kvCacheUsage = maxOf(samples, KV_CACHE) ?? maxOf(samples, KV_CACHE_OLD);
  return kvCacheUsage === undefined ? { running, waiting } : { running, waiting, kvCacheUsage };
}

/**
 * Samples of the Prometheus text exposition format (and OpenMetrics, which it is a subset of for reading).
 * Comments, `# EOF`, timestamps and exemplars are skipped; a line that does not parse is dropped, not fatal.
 * `onlyNames` skips, before parsing, every line not starting with one of them.
 */
export function parsePrometheusText(text: string, onlyNames?: readonly string[]): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (onlyNames !== undefined && !onlyNames.some((n) => line.startsWith(n))) continue;
    const sample = parseLine(line);
    if (sample !== undefined) samples.push(sample);
  }
  return samples;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseLine(line: string): Sample | undefined {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return undefined;
  let rest = line.slice(name.length);
  let labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    const parsed = parseLabels(rest);
    if (parsed === undefined) return undefined;
    labels = parsed.labels;
    rest = rest.slice(parsed.length);
  }
  const valueText = rest.trim().split(/\s+/)[0] ?? "";
  const value = parseValue(valueText);
  return value === undefined ? undefined : { name, labels, value };
}

/** `{a="x",b="y\"z"}` → labels and the characters consumed; undefined when malformed. */
function parseLabels(text: string): { labels: Record<string, string>; length: number } | undefined {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (text[i] === " " || text[i] === ",") i++;
    if (text[i] === "}") return { labels, length: i + 1 };
    const labelName = LABEL_NAME.exec(text.slice(i))?.[0];
    if (labelName === undefined) return undefined;
    i += labelName.length;
    if (text[i] !== "=" || text[i + 1] !== '"') return undefined;
    i += 2;
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) return undefined;
      i++;
      if (c === '"') break;
      if (c === "\\") {
        const next = text[i++];
        value += next === "n" ? "\n" : (next ?? "");
      } else {
        value += c;
      }
    }
    labels[labelName] = value;
  }
}

function parseValue(text: string): number | undefined {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "") return undefined;
  const n = Number(text);
  return Number.isNaN(n) && text !== "NaN" ? undefined : n;
}

function valuesOf(samples: Sample[], name: string): number[] {
  return samples.filter((s) => s.name === name && Number.isFinite(s.value)).map((s) => s.value);
}

function sumOf(samples: Sample[], name: string): number | undefined {
  const values = valuesOf(samples, name);
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
}

function maxOf(samples: Sample[], name: string): number | undefined {
  const values = valuesOf(samples, name);
  return values.length === 0 ? undefined : Math.max(...values);
}
