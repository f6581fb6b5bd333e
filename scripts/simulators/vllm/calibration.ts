/**
 * The simulator measured against the published points (calibration-points.ts), in virtual time: every workload runs
 * the real engine with the profile's parameters, so the result is the model's, exact and machine-independent.
 */
import { CALIBRATION_POINTS, SATURATION_CHECK, withinTolerance, type CalibrationPoint, type CalibrationWorkload } from "./calibration-points.ts";
import { runBatchLatency, runClosedLoop, type LoadResult } from "./closed-loop.ts";
import type { EngineConfig } from "./engine.ts";
import { PROFILES, type ProfileName } from "./profiles.ts";

export interface CalibrationRow {
  point: CalibrationPoint;
  measured: number;
  /** measured ÷ published. */
  ratio: number;
  /** undefined: shown, not held. */
  ok: boolean | undefined;
}

export interface SaturationRow {
  profile: ProfileName;
  from: number;
  to: number;
  gain: number;
  maxGain: number;
  ok: boolean;
}

export interface CalibrationOptions {
  /** Simulated ms measured per closed-loop workload (after 15 s of warm-up). Default 45 s. */
  measureMs?: number;
  /** Engine settings over the profile's (a candidate fit). */
  overrides?: Partial<EngineConfig>;
  seed?: number;
}

export function engineConfig(profile: ProfileName, o: CalibrationOptions = {}): EngineConfig {
  return { ...PROFILES[profile], seed: o.seed ?? 0, timeScale: 1, ...o.overrides };
}

export function calibrate(profiles: readonly ProfileName[], o: CalibrationOptions = {}): { rows: CalibrationRow[]; saturation: SaturationRow[] } {
  const cache = new Map<string, LoadResult | number>();
  const run = (profile: ProfileName, w: CalibrationWorkload): LoadResult | number => {
    const key = `${profile} ${JSON.stringify(w)}`;
    let result = cache.get(key);
    if (result === undefined) {
      const config = engineConfig(profile, o);
      result =
        w.kind === "batch"
          ? runBatchLatency(config, w.batch, w.promptTokens, w.outputTokens)
          : runClosedLoop(config, { ...w, warmupMs: 15_000, measureMs: o.measureMs ?? 45_000 });
      cache.set(key, result);
    }
    return result;
  };
  const rows = CALIBRATION_POINTS.filter((p) => profiles.includes(p.profile)).map((point) => {
    const result = run(point.profile, point.workload);
    const measured = typeof result === "number" ? result : metricOf(result, point.metric);
    return { point, measured, ratio: measured / point.published, ok: withinTolerance(point, measured) };
  });
  const saturation: SaturationRow[] = [];
  if (profiles.includes(SATURATION_CHECK.profile)) {
    const { profile, from, to, maxGain } = SATURATION_CHECK;
    const at = (c: number) => run(profile, { kind: "closed-loop", concurrency: c, promptTokens: 200, outputTokens: 200 }) as LoadResult;
    const gain = at(to).outputTokensPerS / at(from).outputTokensPerS;
    saturation.push({ profile, from, to, gain, maxGain, ok: gain <= maxGain });
  }
  return { rows, saturation };
}

function metricOf(r: LoadResult, metric: CalibrationPoint["metric"]): number {
  switch (metric) {
    case "output_tokens_per_s":
      return r.outputTokensPerS;
    case "ttft_ms":
      return r.ttftMs;
    case "itl_ms":
      return r.itlMs;
    case "batch_latency_ms":
      return r.e2eMs;
  }
}

/** The comparison as Markdown: a table per profile, then the sources (the README's section is this output). */
export function calibrationTable(rows: readonly CalibrationRow[]): string {
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  const out: string[] = [];
  for (const profile of [...new Set(rows.map((r) => r.point.profile))]) {
    out.push(`**${profile}**`, "", "| source | workload | metric | published | simulator | ratio | tolerance | held |", "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const { point, measured, ratio, ok } of rows.filter((r) => r.point.profile === profile)) {
      const w = point.workload;
      const workload = w.kind === "batch" ? `batch ${w.batch}, ${w.promptTokens}→${w.outputTokens}` : `c=${w.concurrency}, ${w.promptTokens}→${w.outputTokens}`;
      const t = point.tolerance;
      const tolerance = t.kind === "ratio" ? `×${t.min}–${t.max}` : t.kind === "at-most" ? `×${t.factorMin}–1` : `${t.low}–${t.high}`;
      const held = ok === undefined ? "shown" : ok ? "yes" : "**NO**";
      out.push(`| ${point.source} | ${workload} | ${point.metric} | ${fmt(point.published)} | ${fmt(measured)} | ${ratio.toFixed(2)} | ${tolerance} | ${held} |`);
    }
    out.push("");
  }
  out.push("Sources:", "");
  for (const source of [...new Set(rows.map((r) => r.point.source))]) {
    const points = rows.map((r) => r.point).filter((p) => p.source === source);
    const notes = [...new Set(points.map((p) => (p.caveat === undefined ? p.setup : `${p.setup}: ${p.caveat}`)).filter((n) => !n.startsWith("AIPerf")))];
    const caveats = [...new Set(points.map((p) => p.caveat).filter((c) => c !== undefined && points[0]!.setup.startsWith("AIPerf")))];
    out.push(`- ${source}: <${points[0]!.url}>${[...notes, ...caveats].map((n) => `; ${n}`).join("")}`);
  }
  return out.join("\n");
}
