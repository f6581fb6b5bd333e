/**
 * Scaling simulator: replays terraform/'s scaling variables against a load profile, minute by minute, and shows
 * what each variable set buys (queue wait, minutes over the SLA) and costs (instance-hours, dollars).
 *
 *   make simulate ARGS="--profile spike"                      step (defaults) vs. target tracking
 *   make simulate ARGS="--profile spike --set scale_up_threshold=50"
 *   make simulate ARGS="--compare terraform/examples/a.tfvars,b.tfvars --profile diurnal"
 *   make simulate ARGS="--profile csv --csv arrivals.csv --set min_size=0"
 *
 * Prints the inputs (with the price's date and the model's assumptions), warm-up warnings, a comparison table and
 * the sensitivity table (spread over metric delay × boot time), writes out/scaling/<name>.json and
 * out/scaling/report.html, and ends with one JSON line: per variant the summary and the spreads. The model and its
 * assumptions: scripts/scaling/*.ts and terraform/README.md.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { readVariableDefaults } from "./hcl.ts";
import { ConfigError } from "../shared/errors.ts";
import { resolveThroughput } from "./scaling/bench-throughput.ts";
import { hourlyPrice, type HourlyPrice } from "./scaling/instance-pricing.ts";
import { arrivalsPerMinute, parseArrivalsCsv, type LoadProfileSpec } from "./scaling/load-profile.ts";
import { describeDelay, QUEUE_SLEEP_MINUTES, WAKE_UP_MAX_DELAY_MINUTES, type MetricDelaySpec } from "./scaling/metric-delay.ts";
import { renderHtmlReport } from "./scaling/report-html.ts";
import { reportJson, summaryLine } from "./scaling/report-json.ts";
import { describeGrid, renderSensitivityTable, renderTable } from "./scaling/report-table.ts";
import { TARGET_TRACKING_ASSUMPTIONS } from "./scaling/scaling-policy.ts";
import { FALLBACKS, parseAssignments, toScalingVariables } from "./scaling/scaling-variables.ts";
import { DEFAULT_SWEEP } from "./scaling/sensitivity.ts";
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
  --boot-minutes <n>       launch to serving (EC2 boot, vLLM install, weights, engine start); default 15
  --ec2-inservice-minutes <n>  launch to EC2 InService without a launch hook; default 2
  --worker-concurrency <n> jobs a busy worker holds in flight; default 1024 (vLLM max-num-seqs)
  --job-seconds <s>        time a job is in flight; default worker-concurrency ÷ throughput (Little's law)
  --metric-delay typical|<min>  how late alarms see a minute's datapoint: a fixed delay, or typical (default):
                           seeded draws, 1–4 min with a tail to 10 (assumed)
  --seed <n>               seed of the delay draws; default 1
  --idle-before-minutes <n>  the queue was idle this long before minute 0 (≥ 360: asleep, no SQS metrics
                           until it wakes, then up to 15 min late); default 0
  --initial-instances <n>  InService at minute 0; default min_size
  --scale-in-protection on|off   on (default): cooperative scale-in as worker/scale-in.ts does it — workers stay
                           protected; the surplus stops intake, finishes its jobs, unprotects and is terminated.
                           off: the ASG terminates the surplus at once; it drains through the lifecycle hook
  --sla-minutes <n>        default 5
  --price <USD/h>          default: gpu_instance_type's on-demand price in scripts/scaling/instance-pricing.ts
                           (p5.48xlarge $55.04, us-east-1, dated); --price is dated to the run
Every report also replays each variant over metric delay 1, 2, 3, 4 min and typical × boot 8, 15, 20 min and
shows the spread (min – max) of p95 wait, minutes over SLA, instance-hours and cost.
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
  "boot-minutes": { type: "string", default: "15" },
  "ec2-inservice-minutes": { type: "string", default: "2" },
  "worker-concurrency": { type: "string", default: "1024" },
  "job-seconds": { type: "string" },
  "metric-delay": { type: "string", default: "typical" },
  seed: { type: "string", default: "1" },
  "idle-before-minutes": { type: "string", default: "0" },
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
    ec2InServiceSeconds: number(flags, "ec2-inservice-minutes", 0) * 60,
    jobSeconds: optionalNumber(flags, "job-seconds", 0) ?? concurrency / throughput.jobsPerSecond,
    metricDelay: metricDelay(flags["metric-delay"]),
    seed: Math.round(number(flags, "seed", 0)),
    idleBeforeMinutes: Math.round(number(flags, "idle-before-minutes", 0)),
    initialInstances: optionalNumber(flags, "initial-instances", 0),
    scaleIn: onOff(flags["scale-in-protection"], "scale-in-protection") ? "cooperative" : "unprotected",
  };
  const slaSeconds = number(flags, "sla-minutes", 0) * 60;
  const priceFlag = optionalNumber(flags, "price", 0);
  const runDate = new Date().toISOString().slice(0, 10);

  const runs: VariantRun[] = variants.map(({ name, raw }) => {
    const vars = toScalingVariables(raw);
    return runVariant(name, vars, arrivals, model, { slaSeconds, price: hourlyPrice(vars.gpuInstanceType, priceFlag, runDate) });
  });
  const price = commonPrice(runs);
  const name = flags.name ?? (profile.kind === "csv" ? path.basename(flags.csv ?? flags.profile, ".csv") : profile.kind);
  const inputs = [
    `profile: ${describeProfile(profile, arrivals)}`,
    `throughput: ${throughput.jobsPerSecond} jobs/s per serving instance (${throughput.source})`,
    `boot: launch → EC2 InService ${(model.ec2InServiceSeconds ?? 0) / 60} min → vLLM ready ${model.bootSeconds / 60} min after launch; ` +
      `job in flight: ${model.jobSeconds.toFixed(1)} s; metric delay: ${describeDelay(model.metricDelay)}, seed ${model.seed}` +
      (model.idleBeforeMinutes ? `; queue idle ${model.idleBeforeMinutes} min before the start` : ""),
    `scale-in: ${model.scaleIn === "cooperative" ? "cooperative (protected workers; the surplus finishes its jobs, then leaves)" : "unprotected (terminated at once, drained by the hook)"}`,
    `SLA: oldest visible message younger than ${slaSeconds / 60} min; price: ${describePrices(runs)}`,
    `sensitivity: ${describeGrid(DEFAULT_SWEEP)}`,
  ];
  const assumptions = [
    TARGET_TRACKING_ASSUMPTIONS,
    `metric delay distribution (typical) and ~2 min from launch to EC2 InService`,
    `a queue idle ${QUEUE_SLEEP_MINUTES / 60} h sleeps; its first metrics after waking are 1–${WAKE_UP_MAX_DELAY_MINUTES} min late (uniform)`,
  ];
  const warnings = runs.flatMap((r) => r.warnings.map((w) => `WARNING ${r.name}: ${w}`));

  const outDir = flags["out-dir"];
  await mkdir(outDir, { recursive: true });
  const jsonFile = path.join(outDir, `${name}.json`);
  const htmlFile = path.join(outDir, "report.html");
  const report = { name, inputs, profile, model, slaSeconds, assumptions };
  await writeFile(jsonFile, `${JSON.stringify(reportJson(report, runs), null, 1)}\n`);
  const htmlInputs = [...inputs, ...assumptions.map((a) => `assumed: ${a}`)];
  await writeFile(htmlFile, renderHtmlReport(runs, { title: `Scaling simulation: ${name}`, inputs: htmlInputs, slaSeconds, price }));

  const text = [
    inputs.join("\n"),
    assumptions.map((a) => `assumed: ${a}`).join("\n"),
    ...(warnings.length > 0 ? [warnings.join("\n")] : []),
    renderTable(runs, { slaSeconds, price }),
    renderSensitivityTable(runs, { slaSeconds, price }),
    `wrote ${jsonFile} and ${htmlFile}`,
  ];
  process.stdout.write(`${text.join("\n\n")}\n`);
  process.stdout.write(`${JSON.stringify(summaryLine(name, { json: jsonFile, html: htmlFile }, runs, price))}\n`);
}

/** The price every variant pays, or undefined when they differ (one instance type per run is the usual case). */
function commonPrice(runs: readonly VariantRun[]): HourlyPrice | undefined {
  const first = runs[0]?.price;
  return first && runs.every((r) => r.price.usdPerHour === first.usdPerHour && r.price.date === first.date) ? first : undefined;
}

function describePrices(runs: readonly VariantRun[]): string {
  const prices = [...new Set(runs.map((r) => `$${r.price.usdPerHour}/h (${r.price.source}, price of ${r.price.date})`))];
  return prices.join("; ");
}

function metricDelay(raw: string): MetricDelaySpec {
  if (raw === "typical") return raw;
  const minutes = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(minutes) || minutes < 0) throw new ConfigError([`--metric-delay ${raw}: expected typical or a whole number of minutes ≥ 0`]);
  return minutes;
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
