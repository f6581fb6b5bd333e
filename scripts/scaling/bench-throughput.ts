/**
 * Per-instance throughput for the simulator: the `--throughput` flag, else what `make bench` measured
 * (`out/bench.json`, field `jobs_per_s_per_instance`), else a documented default.
 *
 * Default, 100 jobs/s per p5.48xlarge: terraform's default serves Llama-3.1-8B as 8 data-parallel replicas (one
 * per H100). Published figures give ~8,100 output tok/s per H100 at 256 concurrent sequences; at the ~128 a GPU
 * gets from one worker's 1,024 in flight, take ~6,000 tok/s, so ~48,000 tok/s per instance, or ~100 jobs/s for
 * jobs of ~500 output tokens. A 70B model (TP4 × 2) is nearer 15 jobs/s: measure and pass the real figure.
 */
import { readFile } from "node:fs/promises";

export const DEFAULT_THROUGHPUT_JOBS_PER_SECOND = 100;

export interface Throughput {
  jobsPerSecond: number;
  source: string;
}

export async function resolveThroughput(flag: number | undefined, benchFile: string): Promise<Throughput> {
  if (flag !== undefined) return { jobsPerSecond: flag, source: "--throughput" };
  const measured = await readBenchFigure(benchFile);
  if (typeof measured === "number") return { jobsPerSecond: measured, source: benchFile };
  const note = measured === "absent" ? "" : `; ignored ${benchFile}: ${measured}`;
  return { jobsPerSecond: DEFAULT_THROUGHPUT_JOBS_PER_SECOND, source: `default (Llama-3.1-8B, 8 × H100, ~500 output tokens/job)${note}` };
}

/** The bench figure, "absent" when there is no file, or why the file's figure cannot be used. */
async function readBenchFigure(file: string): Promise<number | string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return "absent";
  }
  try {
    const value = (JSON.parse(text) as { jobs_per_s_per_instance?: unknown }).jobs_per_s_per_instance;
    if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
    return "no positive jobs_per_s_per_instance";
  } catch {
    return "not JSON";
  }
}
