/**
 * Scaling simulator: replays terraform/'s scaling variables against a load profile, minute by minute, and shows
 * what each variable set buys (queue wait, minutes over the SLA) and costs (instance-hours, dollars).
 *
 *   make simulate ARGS="--profile spike"                      step (defaults) vs. target tracking
 *   make simulate ARGS="--profile spike --set scale_up_threshold=50"
 *   make simulate ARGS="--compare terraform/examples/a.tfvars,b.tfvars --profile diurnal"
 *   make simulate ARGS="--profile csv --csv arrivals.csv --set min_size=0"
 *
 * Prints a comparison table, writes out/scaling/<name>.json and out/scaling/report.html, and ends with one JSON
 * line: the summary per variant. The model and its assumptions: scripts/scaling/*.ts and terraform/README.md.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { readVariableDefaults } from "./hcl.ts";
import { ConfigError } from "../shared/errors.ts";
import { resolveThroughput } from "./scaling/bench-throughput.ts";
import { hourlyPrice } from "./scaling/instance-pricing.ts";
import { arrivalsPerMinute, parseArrivalsCsv, type LoadProfileSpec } from "./scaling/load-profile.ts";
import { renderHtmlReport } from "./scaling/report-html.ts";
import { renderTable } from "./scaling/report-table.ts";
import { FALLBACKS, parseAssignments, toScalingVariables } from "./scaling/scaling-variables.ts";
import type { ModelOptions } from "./scaling/simulation.ts";
import { runVariant, type VariantRun } from "./scaling/variant.ts";

const HELP = `Usage: make simulate ARGS="[options]"

Load profile
  --profile constant|diurnal|spike|csv|<file.csv>   default spike
  --csv <file>             arrivals per minute, one row per minute (last field of each row)
  --rate <jobs/min>        (mean / baseline) rate; default in instances' worth of throughput:
                           constant 2.5, diurnal 2, spike 0.5
  --minutes <n>            horizon; default constant 180, spike 240, diurnal 1440, csv its length
  --spike-multiple <x>     default 10      --spike-start <min>  default 60   --spike-minutes <n>  default 30
  --amplitude <0-1>        diurnal swing around the mean, default 0.8; --trough-minute default 240 (04:00)
Variables (terraform/ defaults, or a .tfvars)
  --tf-dir <dir>           default terraform
  --tfvars <file>          the base variable set
  --compare a.tfvars,b.tfvars   extra variants, each file over terraform/ defaults
  --set name=value[,...]   an extra variant: the base with these overrides (repeatable)
  --single                 only the base variant (by default, with no --compare/--set: step vs. target tracking)
Model
  --throughput <jobs/s>    per InService instance; default out/bench.json jobs_per_s_per_instance, else 100
  --bench <file>           default out/bench.json
  --boot-minutes <n>       launch to taking jobs (p5 boot + model load); default 8
  --worker-concurrency <n> jobs a busy worker holds in flight; default 1024 (vLLM max-num-seqs)
  --job-seconds <s>        time a job is in flight; default worker-concurrency ÷ throughput (Little's law)
  --metric-lag-minutes <n> delay before an alarm sees a minute's datapoint; default 1
  --initial-instances <n>  InService at minute 0; default min_size
  --scale-in-protection on|off   on (default): cooperative scale-in as worker/scale-in.ts does it — workers stay
                           protected; the surplus stops intake, finishes its jobs, unprotects and is terminated.
                           off: the ASG terminates the surplus at once; it drains through the lifecycle hook
  --sla-minutes <n>        default 5
  --price <USD/h>          default: the table price of gpu_instance_type (p5.48xlarge $98.32)
Output
  --name <name>            out/scaling/<name>.json; default the profile name
  --out-dir <dir>          default out/scaling
`;

const options = {
  profile: { type: "string", default: "spike" },
  csv: { type: "string" },
  rate: { type: "string" },
  minutes: { type: "string" },
  "spike-multiple": { type: "string", default: "10" },
  "spike-start": { type: "string", default: "60" },
  "spike-minutes": { type: "string", default: "30" },
  amplitude: { type: "string", default: "0.8" },
  "trough-minute": { type: "string", default: "240" },
  "tf-dir": { type: "string", default: "terraform" },
  tfvars: { type: "string" },
  compare: { type: "string" },
  set: { type: "string", multiple: true },
  single: { type: "boolean", default: false },
  throughput: { type: "string" },
  bench: { type: "string", default: "out/bench.json" },
  "boot-minutes": { type: "string", default: "8" },
  "worker-concurrency": { type: "string", default: "1024" },
  "job-seconds": { type: "string" },
  "metric-lag-minutes": { type: "string", default: "1" },
  "initial-instances": { type: "string" },
  "scale-in-protection": { type: "string", default: "on" },
  "sla-minutes": { type: "string", default: "5" },
  price: { type: "string" },
  name: { type: "string" },
  "out-dir": { type: "string", default: "out/scaling" },
  help: { type: "boolean", default: false },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof options }>>["values"];

interface VariantInput {
  name: string;
  raw: Record<string, unknown>;
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({ options, allowPositionals: false });
  if (flags.help) {
    process.stdout.write(HELP);
    return;
  }
  const tfDir = flags["tf-dir"];
  const variants = await variantInputs(flags, tfDir);
  const throughput = await resolveThroughput(optionalNumber(flags, "throughput", 1e-9), flags.bench);
  const perInstancePerMinute = throughput.jobsPerSecond * 60;
  const profile = await loadProfile(flags, perInstancePerMinute);
  const arrivals = arrivalsPerMinute(profile);
  const concurrency = number(flags, "worker-concurrency", 1);
  const model: ModelOptions = {
    throughputJobsPerSecond: throughput.jobsPerSecond,
    bootSeconds: number(flags, "boot-minutes", 0) * 60,
    jobSeconds: optionalNumber(flags, "job-seconds", 0) ?? concurrency / throughput.jobsPerSecond,
    metricLagMinutes: Math.round(number(flags, "metric-lag-minutes", 0)),
    initialInstances: optionalNumber(flags, "initial-instances", 0),
    scaleIn: onOff(flags["scale-in-protection"], "scale-in-protection") ? "cooperative" : "unprotected",
  };
  const slaSeconds = number(flags, "sla-minutes", 0) * 60;
  const priceFlag = optionalNumber(flags, "price", 0);

  const runs: VariantRun[] = variants.map(({ name, raw }) => {
    const vars = toScalingVariables(raw);
    const pricePerHour = hourlyPrice(vars.gpuInstanceType, priceFlag);
    return runVariant(name, vars, arrivals, model, { slaSeconds, pricePerHour });
  });
  const prices = [...new Set(runs.map((r) => r.pricePerHour))];
  const samePrice = prices.length === 1 ? prices[0] : undefined;
  const name = flags.name ?? (profile.kind === "csv" ? path.basename(flags.csv ?? flags.profile, ".csv") : profile.kind);
  const inputs = [
    `profile: ${describeProfile(profile, arrivals)}`,
    `throughput: ${throughput.jobsPerSecond} jobs/s per InService instance (${throughput.source})`,
    `boot to ready: ${model.bootSeconds / 60} min; job in flight: ${model.jobSeconds.toFixed(1)} s; metric lag: ${model.metricLagMinutes} min; ` +
      `scale-in: ${model.scaleIn === "cooperative" ? "cooperative (protected workers; the surplus finishes its jobs, then leaves)" : "unprotected (terminated at once, drained by the hook)"}`,
    `SLA: oldest visible message younger than ${slaSeconds / 60} min; price: ${prices.map((p) => `$${p}/h`).join(", ")}`,
  ];

  const outDir = flags["out-dir"];
  await mkdir(outDir, { recursive: true });
  const jsonFile = path.join(outDir, `${name}.json`);
  const htmlFile = path.join(outDir, "report.html");
  await writeFile(jsonFile, `${JSON.stringify(toJson(name, inputs, profile, model, slaSeconds, runs), null, 1)}\n`);
  await writeFile(htmlFile, renderHtmlReport(runs, { title: `Scaling simulation: ${name}`, inputs, slaSeconds, pricePerHour: samePrice }));

  process.stdout.write(`${inputs.join("\n")}\n\n${renderTable(runs, { slaSeconds, pricePerHour: samePrice })}\n\n`);
  process.stdout.write(`wrote ${jsonFile} and ${htmlFile}\n`);
  const summaryLine = { name, json: jsonFile, html: htmlFile, variants: runs.map((r) => ({ name: r.name, ...r.summary })) };
  process.stdout.write(`${JSON.stringify(summaryLine)}\n`);
}

/** The variable sets to compare, named for the table. */
async function variantInputs(flags: Flags, tfDir: string): Promise<VariantInput[]> {
  const base = await readVariableDefaults(tfDir, flags.tfvars);
  const baseName = flags.tfvars ? path.basename(flags.tfvars, ".tfvars") : "defaults";
  const compareFiles = (flags.compare ?? "").split(",").map((f) => f.trim()).filter(Boolean);
  const sets = flags.set ?? [];
  const known = new Set([...Object.keys(base), ...Object.keys(FALLBACKS)]);
  const extra: VariantInput[] = [];
  for (const file of compareFiles) {
    extra.push({ name: path.basename(file, ".tfvars"), raw: await readVariableDefaults(tfDir, file) });
  }
  for (const text of sets) {
    const overrides = parseAssignments(text);
    const unknown = Object.keys(overrides).filter((k) => !known.has(k));
    if (unknown.length > 0) throw new ConfigError(unknown.map((k) => `--set ${k}: not a variable of ${tfDir}/`));
    extra.push({ name: text, raw: { ...base, ...overrides } });
  }
  if (extra.length > 0 || flags.single) return [{ name: baseName, raw: base }, ...extra];
  // The default comparison: the base as step scaling on depth vs. the same sizes with target tracking.
  const step: Record<string, unknown> = { ...base, scaling_mode: "step" };
  const tracking: Record<string, unknown> = { ...base, scaling_mode: "target_tracking" };
  const threshold = step.scale_up_threshold ?? FALLBACKS.scale_up_threshold;
  const target = tracking.target_backlog_per_instance ?? FALLBACKS.target_backlog_per_instance;
  return [
    { name: `step, depth > ${String(threshold)}`, raw: step },
    { name: `target tracking, backlog/instance ${String(target)}`, raw: tracking },
  ];
}

async function loadProfile(flags: Flags, perInstancePerMinute: number): Promise<LoadProfileSpec> {
  const kind = flags.profile;
  const csvFile = kind.endsWith(".csv") ? kind : kind === "csv" ? flags.csv : undefined;
  if (csvFile !== undefined) {
    const arrivals = parseArrivalsCsv(await readFile(csvFile, "utf8"), csvFile);
    const minutes = optionalNumber(flags, "minutes", 1);
    return { kind: "csv", arrivals: minutes === undefined ? arrivals : arrivals.slice(0, minutes) };
  }
  if (kind === "csv") throw new ConfigError(["--profile csv needs --csv <file>"]);
  // Default rates, in instances' worth of capacity: spike baseline 0.5 (the default fleet of 2 idles at 25 %, the
  // 10× burst needs 5), constant 2.5 (needs one more than min_size), diurnal mean 2 (0.4 at night, 3.6 at peak).
  const share = { constant: 2.5, diurnal: 2, spike: 0.5 }[kind as "constant" | "diurnal" | "spike"] ?? 1;
  const ratePerMinute = optionalNumber(flags, "rate", 0) ?? perInstancePerMinute * share;
  const minutes = (fallback: number) => Math.round(optionalNumber(flags, "minutes", 1) ?? fallback);
  switch (kind) {
    case "constant":
      return { kind, ratePerMinute, minutes: minutes(180) };
    case "diurnal":
      return { kind, ratePerMinute, minutes: minutes(1440), amplitude: number(flags, "amplitude", 0), troughMinute: number(flags, "trough-minute", 0) };
    case "spike":
      return {
        kind,
        ratePerMinute,
        minutes: minutes(240),
        multiple: number(flags, "spike-multiple", 0),
        startMinute: Math.round(number(flags, "spike-start", 0)),
        durationMinutes: Math.round(number(flags, "spike-minutes", 0)),
      };
    default:
      throw new ConfigError([`--profile ${kind}: expected constant, diurnal, spike, csv or a .csv file`]);
  }
}

function describeProfile(profile: LoadProfileSpec, arrivals: number[]): string {
  const total = Math.round(arrivals.reduce((a, b) => a + b, 0)).toLocaleString("en-US");
  const span = `${arrivals.length} min, ${total} jobs`;
  switch (profile.kind) {
    case "constant":
      return `constant ${profile.ratePerMinute} jobs/min, ${span}`;
    case "diurnal":
      return `diurnal, mean ${profile.ratePerMinute} jobs/min ±${profile.amplitude * 100} %, trough at minute ${profile.troughMinute}, ${span}`;
    case "spike":
      return `spike: ${profile.ratePerMinute} jobs/min, ×${profile.multiple} from minute ${profile.startMinute} for ${profile.durationMinutes} min, ${span}`;
    case "csv":
      return `csv, ${span}`;
  }
}

function toJson(name: string, inputs: string[], profile: LoadProfileSpec, model: ModelOptions, slaSeconds: number, runs: VariantRun[]) {
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    name,
    inputs,
    profile: profile.kind === "csv" ? { kind: "csv", minutes: profile.arrivals.length } : profile,
    model,
    slaSeconds,
    variants: runs.map((run) => {
      const m = run.result.minutes;
      const alarmNames = [...new Set(m.flatMap((x) => Object.keys(x.alarms)))];
      return {
        name: run.name,
        variables: run.variables,
        pricePerHour: run.pricePerHour,
        summary: run.summary,
        actions: run.result.actions,
        // Columns, one value per minute: compact, and easy to plot elsewhere.
        series: {
          arrivals: m.map((x) => r2(x.arrivals)),
          started: m.map((x) => r2(x.started)),
          depth: m.map((x) => r2(x.depth)),
          inFlight: m.map((x) => r2(x.inFlight)),
          oldestAgeSeconds: m.map((x) => r2(x.oldestAgeSeconds)),
          meanWaitSeconds: m.map((x) => r2(x.meanWaitSeconds)),
          inService: m.map((x) => x.inService),
          pending: m.map((x) => x.pending),
          leaving: m.map((x) => x.leaving),
          draining: m.map((x) => x.draining),
          desired: m.map((x) => x.desired),
          billed: m.map((x) => x.billed),
          alarms: Object.fromEntries(alarmNames.map((a) => [a, m.map((x) => x.alarms[a] ?? null)])),
        },
      };
    }),
  };
}

function onOff(value: string, name: string): boolean {
  if (value === "on" || value === "off") return value === "on";
  throw new ConfigError([`--${name} ${value}: expected on or off`]);
}

function number(flags: Flags, name: keyof Flags, min: number): number {
  const value = optionalNumber(flags, name, min);
  if (value === undefined) throw new ConfigError([`--${name} is required`]);
  return value;
}

function optionalNumber(flags: Flags, name: keyof Flags, min: number): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(value) || value < min) {
    throw new ConfigError([`--${name} ${String(raw)}: expected a number ≥ ${min}`]);
  }
  return value;
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
