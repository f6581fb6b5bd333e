/**
 * Calibration check, two ways:
 *
 *   node --import tsx scripts/simulators/vllm/calibrate.ts [--profile P[,P]] [--measure-s 45]
 *     runs every published point of calibration-points.ts against the engine in virtual time (seconds of CPU) and
 *     prints the measured-vs-published table (Markdown) and the saturation check; exits 1 if a held point is out of
 *     tolerance.
 *
 *   node --import tsx scripts/simulators/vllm/calibrate.ts --http --profile P --concurrency 1,64,256 \
 *       [--prompt-tokens 200] [--max-tokens 200] [--seconds 20] [--time-scale 0.2]
 *     drives a real simulator over HTTP closed-loop (completions, ignore_eos) and prints output tok/s and mean ITL /
 *     TTFT / e2e read from its own /metrics: the same model through the server, at the cost of real time.
 */
import { parseArgs } from "node:util";
import { calibrate, calibrationTable } from "./calibration.ts";
import { isProfileName, type ProfileName } from "./profiles.ts";
import { startVllmSimulator } from "./server.ts";

const { values } = parseArgs({
  options: {
    profile: { type: "string", default: "llama-3.1-8b-h100,llama-3.1-70b-8xh100" },
    "measure-s": { type: "string", default: "45" },
    http: { type: "boolean", default: false },
    concurrency: { type: "string", default: "1,64,256" },
    "prompt-tokens": { type: "string", default: "200" },
    "max-tokens": { type: "string", default: "200" },
    seconds: { type: "string", default: "20" },
    "time-scale": { type: "string", default: "0.2" },
  },
});

const profiles = values.profile.split(",").map((p) => p.trim());
for (const p of profiles) {
  if (!isProfileName(p)) {
    console.error(`unknown profile ${p}`);
    process.exit(2);
  }
}

if (!values.http) {
  const { rows, saturation } = calibrate(profiles as ProfileName[], { measureMs: Number(values["measure-s"]) * 1000 });
  console.log(calibrationTable(rows));
  for (const s of saturation) {
    console.log(`\nsaturation (${s.profile}): throughput at concurrency ${s.to} is ${s.gain.toFixed(2)}× that at ${s.from} (published curves flatten: held at ≤ ${s.maxGain}×) ${s.ok ? "ok" : "**NO**"}`);
  }
  const failed = rows.filter((r) => r.ok === false).length + saturation.filter((s) => !s.ok).length;
  console.log(`\n${rows.filter((r) => r.ok === true).length} held points within tolerance, ${failed} outside, ${rows.filter((r) => r.ok === undefined).length} shown only`);
  process.exitCode = failed > 0 ? 1 : 0;
} else {
  await overHttp(profiles[0] as ProfileName);
}

async function overHttp(profile: ProfileName): Promise<void> {
  const timeScale = Number(values["time-scale"]);
  const promptTokens = Number(values["prompt-tokens"]);
  const maxTokens = Number(values["max-tokens"]);
  const simSeconds = Number(values.seconds);
  /** Sum and count of a histogram from Prometheus text. */
  const scrape = (text: string, name: string) => {
    const pick = (suffix: string) => Number(new RegExp(`^${name}${suffix}\\{[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
    return { sum: pick("_sum"), count: pick("_count") };
  };
  const sim = await startVllmSimulator({ profile, port: 0, timeScale });
  const level = async (concurrency: number): Promise<string> => {
    // BOS + the text: ≈ 4 characters a token; a per-client prefix keeps prompts apart (no prefix-cache hits).
    const filler = "word ".repeat(promptTokens).slice(0, (promptTokens - 1) * 4 - 16);
    const before = await (await fetch(`${sim.url}/metrics`)).text();
    const started = performance.now();
    const deadline = started + simSeconds * 1000 * timeScale;
    let tokens = 0;
    let requests = 0;
    const loop = async (id: number) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const res = await fetch(`${sim.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: sim.options.model, prompt: `${String(id).padStart(6)}-${String(i).padStart(6)} ${filler}`, max_tokens: maxTokens, ignore_eos: true }),
        });
        tokens += ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
        requests++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, id) => loop(id)));
    const simElapsedS = (performance.now() - started) / timeScale / 1000;
    const after = await (await fetch(`${sim.url}/metrics`)).text();
    const mean = (name: string) => ((scrape(after, name).sum - scrape(before, name).sum) / Math.max(1, scrape(after, name).count - scrape(before, name).count)) * 1000;
    return [
      `concurrency ${String(concurrency).padStart(4)}`,
      `${(tokens / simElapsedS).toFixed(0).padStart(6)} output tok/s`,
      `ITL ${mean("vllm:inter_token_latency_seconds").toFixed(1)} ms`,
      `TTFT ${mean("vllm:time_to_first_token_seconds").toFixed(0)} ms`,
      `e2e ${mean("vllm:e2e_request_latency_seconds").toFixed(0)} ms`,
      `${requests} requests`,
    ].join("  ");
  };
  try {
    console.log(`${profile} over HTTP: prompt ${promptTokens} tok, output ${maxTokens} tok, ${simSeconds} s simulated per level, time scale ${timeScale}`);
    for (const c of values.concurrency.split(",").map(Number)) console.log(await level(c));
  } finally {
    await sim.close();
  }
}
