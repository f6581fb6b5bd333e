/**
 * Calibration check: drive a simulator in this process closed-loop at several concurrencies and print output tok/s,
 * mean ITL and mean TTFT in simulated time (read from its own /metrics), to compare a profile with published numbers.
 *   node --import tsx scripts/simulators/vllm/calibrate.ts --profile llama-3.1-8b-h100 --concurrency 1,64,256
 * Flags: --profile, --concurrency (list), --prompt-tokens (256), --max-tokens (256), --seconds (simulated, 20),
 * --time-scale (0.2). Reference workload: fixed prompt and output lengths (ignore_eos), as in vLLM's benchmarks.
 */
import { parseArgs } from "node:util";
import { startVllmSimulator, type ProfileName } from "./server.ts";

const { values } = parseArgs({
  options: {
    profile: { type: "string", default: "llama-3.1-8b-h100" },
    concurrency: { type: "string", default: "1,64,256" },
    "prompt-tokens": { type: "string", default: "256" },
    "max-tokens": { type: "string", default: "256" },
    seconds: { type: "string", default: "20" },
    "time-scale": { type: "string", default: "0.2" },
  },
});

const timeScale = Number(values["time-scale"]);
const promptTokens = Number(values["prompt-tokens"]);
const maxTokens = Number(values["max-tokens"]);
const simSeconds = Number(values.seconds);

/** Sum and count of a histogram (or value of a counter) from Prometheus text. */
function scrape(text: string, name: string): { sum: number; count: number } {
  const pick = (suffix: string) => Number(new RegExp(`^${name}${suffix}\\{[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
  return { sum: pick("_sum"), count: pick("_count") };
}

async function level(url: string, model: string, concurrency: number): Promise<string> {
  const prompt = "word ".repeat(Math.ceil((promptTokens * 4) / 5)).slice(0, promptTokens * 4);
  const before = await (await fetch(`${url}/metrics`)).text();
  const started = performance.now();
  const deadline = started + simSeconds * 1000 * timeScale;
  let tokens = 0;
  let requests = 0;
  const loop = async (id: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, prompt: `${id}-${i} ${prompt}`, max_tokens: maxTokens, ignore_eos: true }),
      });
      const body = (await res.json()) as { usage: { completion_tokens: number } };
      tokens += body.usage.completion_tokens;
      requests++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, id) => loop(id)));
  const simElapsedS = (performance.now() - started) / timeScale / 1000;
  const after = await (await fetch(`${url}/metrics`)).text();
  const mean = (name: string) => {
    const a = scrape(after, name);
    const b = scrape(before, name);
    return ((a.sum - b.sum) / Math.max(1, a.count - b.count)) * 1000;
  };
  return [
    `concurrency ${String(concurrency).padStart(4)}`,
    `${(tokens / simElapsedS).toFixed(0).padStart(6)} output tok/s`,
    `ITL ${mean("vllm:inter_token_latency_seconds").toFixed(1)} ms`,
    `TTFT ${mean("vllm:time_to_first_token_seconds").toFixed(0)} ms`,
    `e2e ${mean("vllm:e2e_request_latency_seconds").toFixed(0)} ms`,
    `${requests} requests`,
  ].join("  ");
}

const sim = await startVllmSimulator({ profile: values.profile as ProfileName, port: 0, timeScale });
try {
  console.log(`${values.profile}: prompt ${promptTokens} tok, output ${maxTokens} tok, ${simSeconds} s simulated per level, time scale ${timeScale}`);
  for (const c of values.concurrency.split(",").map(Number)) console.log(await level(sim.url, sim.options.model, c));
} finally {
  await sim.close();
}
