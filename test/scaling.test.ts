/**
 * The scaling simulator: one scenario checked by hand, invariants over many scenarios, scale from zero, and the
 * building blocks (alarm evaluation, queue conservation, CSV profiles, variables). Pure and fast, except the last
 * two, which read terraform/ (fallbacks in step with variables.tf) and run the CLI once against it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { ConfigError } from "../shared/errors.ts";
import { evaluateAlarm, type AlarmSpec } from "../scripts/scaling/alarm.ts";
import { AutoScalingGroup, type ScaleInMode } from "../scripts/scaling/auto-scaling-group.ts";
import { arrivalsPerMinute, parseArrivalsCsv } from "../scripts/scaling/load-profile.ts";
import { FluidQueue } from "../scripts/scaling/queue-model.ts";
import { FALLBACKS, toScalingVariables } from "../scripts/scaling/scaling-variables.ts";
import { HOURLY_PRICE_USD, PRICE_TABLE_DATE } from "../scripts/scaling/instance-pricing.ts";
import { readVariableDefaults } from "../scripts/hcl.ts";
import { simulate, type ModelOptions, type SimulationResult } from "../scripts/scaling/simulation.ts";
import { summarize, waitQuantile } from "../scripts/scaling/summary.ts";

const run = promisify(execFile);

test("hand-checked: constant load above one instance's capacity scales out once and the wait returns under the SLA", () => {
  // One instance starts 60 jobs/min (1 job/s); 100 jobs/min arrive; max 2 instances; boot 8 min; no metric lag;
  // scale-in off (threshold 0) so only the scale-out is in play.
  //   Queue grows 40/min: depth at the end of minute k = 40(k+1). Datapoints 80, 120, 160…: > 100 from minute 2;
  //   2 consecutive periods → ALARM at the end of minute 3 → launch at 4 → InService at 12.
  //   Depth peaks at 40 × 12 = 480 (end of minute 11), then drains at 120 − 100 = 20/min: empty at minute 36.
  //   Job x (x-th to arrive) arrives at x/100. Before 12 it starts at x/60 (wait x/150: 0 → 4.8 min, 720 jobs);
  //   after, at 12 + (x − 720)/120 (wait 6 − x/600: 4.8 → 0 min, jobs 720…3600); the 2,400 after 36 wait 0.
  //   Wait CDF over 6,000 jobs: F(w) = 2400 + 750 w (w in min) → p50: 0.8 min = 48 s; p95: 4.4 min = 264 s;
  //   max 4.8 min = 288 s. Oldest age at time t: 0.4 t before 12, 7.2 − 0.2 t after; over a 2.5 min SLA for
  //   6.25 < t < 23.5, i.e. end-of-minute samples t = 7…23: minutes 6…22, 17 minutes.
  //   Instance-minutes: 60 + (60 − 4) = 116; at $60/h: $116.
  const vars = toScalingVariables({ min_size: 1, max_size: 2, scale_down_threshold: 0 });
  const result = simulate(vars, new Array(60).fill(100), { throughputJobsPerSecond: 1, bootSeconds: 480, jobSeconds: 30, metricDelay: 0 });
  const summary = summarize(result, { slaSeconds: 150, pricePerHour: 60 });

  assert.deepEqual(result.actions.map((a) => [a.minute, a.policy, a.from, a.to]), [[3, "scale-up", 1, 2]]);
  assert.equal(result.minutes[11]!.inService, 1);
  assert.equal(result.minutes[12]!.inService, 2);
  assert.ok(Math.abs(summary.p50WaitSeconds - 48) < 0.01, `p50 ${summary.p50WaitSeconds}`);
  assert.ok(Math.abs(summary.p95WaitSeconds - 264) < 0.01, `p95 ${summary.p95WaitSeconds}`);
  assert.equal(summary.maxWaitSeconds, 288);
  assert.equal(summary.maxDepth, 480);
  assert.equal(summary.minutesOverSla, 17);
  const over = result.minutes.filter((m) => m.oldestAgeSeconds > 150).map((m) => m.minute);
  assert.deepEqual([over[0], over.at(-1)], [6, 22]);
  assert.equal(result.minutes[35]!.depth, 0);
  assert.equal(summary.instanceHours, 1.93);
  assert.equal(summary.costUsd, 116);
  assert.equal(summary.jobsQueuedAtEnd, 0);
});

test("hand-checked: cooperative scale-in shrinks a busy fleet; volunteers are billed until their jobs are done", () => {
  // 3 instances of 60 jobs/min each, 60 jobs/min arriving: the queue stays empty and each job is in flight 30 s, so
  // in flight = 60 × 30/60 = 30 at the end of every minute, visible 0: backlog (visible + in flight) = 30.
  // Scale-down on backlog < 50 for 5 × 60 s, no lag: ALARM at the end of minute 4 → desired 2 from minute 5;
  // cooldown 10 min → again at minute 14 → desired 1 from minute 15; then min_size holds.
  // A volunteer takes no jobs from the first minute and goes after ceil((60 s check + 30 s jobs) / 60) = 2 minutes:
  // billed 3 in minutes 0–6, 2 in minutes 7–16, 1 in minutes 17–29: 21 + 20 + 13 = 54 instance-minutes.
  // Unprotected, a terminated worker drains ceil(30 / 60) = 1 minute instead: 3 in 0–5, 2 in 6–15, 1 in 16–29:
  // 18 + 20 + 14 = 52. With the default threshold (10) the backlog of 30 never breaches: no scale-in at all.
  const raw = { min_size: 1, max_size: 3, scale_up_threshold: 100, scale_down_threshold: 50 };
  const model: ModelOptions = { throughputJobsPerSecond: 1, bootSeconds: 480, jobSeconds: 30, metricDelay: 0, initialInstances: 3 };
  const arrivals = new Array(30).fill(60);
  const cooperative = simulate(toScalingVariables(raw), arrivals, model);
  assert.deepEqual(cooperative.actions.map((a) => [a.minute, a.policy, a.from, a.to]), [[4, "scale-down", 3, 2], [14, "scale-down", 2, 1]]);
  assert.deepEqual([4, 5, 6, 7].map((k) => [cooperative.minutes[k]!.inService, cooperative.minutes[k]!.leaving]), [[3, 0], [2, 1], [2, 1], [2, 0]]);
  assert.deepEqual(cooperative.minutes.map((m) => m.billed).join(""), `${"3".repeat(7)}${"2".repeat(10)}${"1".repeat(13)}`);
  assert.equal(cooperative.minutes[5]!.inFlight, 30, "the volunteer's jobs still count as in flight");
  assert.ok(cooperative.minutes.every((m) => m.depth === 0));

  const unprotected = simulate(toScalingVariables(raw), arrivals, { ...model, scaleIn: "unprotected" });
  assert.deepEqual(unprotected.actions.map((a) => [a.minute, a.from, a.to]), [[4, 3, 2], [14, 2, 1]]);
  assert.equal(unprotected.minutes.reduce((sum, m) => sum + m.billed, 0), 52);
  assert.equal(unprotected.minutes[5]!.draining, 1);

  const idleOnly = simulate(toScalingVariables({ ...raw, scale_down_threshold: 10 }), arrivals, model);
  assert.deepEqual(idleOnly.actions, []);
  const visibleOnly = simulate(toScalingVariables({ ...raw, scale_down_threshold: 10, scale_down_metric: "visible" }), arrivals, model);
  assert.equal(visibleOnly.actions.length, 2, "visible is 0 below threshold 10: the same two scale-ins");
});

test("group: a scale-out during a volunteer's leave calls it back before launching; Pending instances go first", () => {
  const group = new AutoScalingGroup({
    minSize: 1,
    maxSize: 4,
    bootMinutes: 8,
    ec2InServiceMinutes: 2,
    launchHookTimeoutMinutes: 30,
    drainMinutes: 1,
    leaveMinutes: 2,
    initialInService: 3,
    scaleIn: "cooperative",
  });
  group.setDesired(2, 5);
  assert.deepEqual(group.counts(), { pending: 0, loading: 0, inService: 2, leaving: 1, draining: 0 });
  assert.equal(group.inServiceMetric(), 3, "still InService to CloudWatch");
  group.setDesired(3, 6);
  assert.deepEqual(group.counts(), { pending: 0, loading: 0, inService: 3, leaving: 0, draining: 0 });
  group.setDesired(4, 6);
  assert.deepEqual(group.counts(), { pending: 1, loading: 0, inService: 3, leaving: 0, draining: 0 });
  group.setDesired(2, 7);
  assert.deepEqual(group.counts(), { pending: 0, loading: 0, inService: 2, leaving: 1, draining: 0 });
  group.advance(8);
  assert.equal(group.billable(), 3);
  group.advance(9);
  assert.deepEqual(group.counts(), { pending: 0, loading: 0, inService: 2, leaving: 0, draining: 0 });
});

const BASE_MODEL: ModelOptions = { throughputJobsPerSecond: 1, bootSeconds: 480, jobSeconds: 20, metricDelay: 1 };

interface Scenario {
  name: string;
  raw: Record<string, unknown>;
  arrivals: number[];
}

function scenarios(): Scenario[] {
  const spike = arrivalsPerMinute({ kind: "spike", ratePerMinute: 40, minutes: 300, multiple: 10, startMinute: 60, durationMinutes: 30 });
  const diurnal = arrivalsPerMinute({ kind: "diurnal", ratePerMinute: 120, minutes: 1440, amplitude: 0.9, troughMinute: 240 });
  const bursts = Array.from({ length: 600 }, (_, m) => (m % 120 < 15 ? 400 : m % 120 < 60 ? 30 : 0));
  const out: Scenario[] = [];
  for (const [profile, arrivals] of [["spike", spike], ["diurnal", diurnal], ["bursts", bursts]] as const) {
    for (const mode of ["step", "target_tracking"]) {
      for (const min of [0, 2]) {
        for (const large of [0, 3]) {
          out.push({
            name: `${profile}/${mode}/min${min}/large${large}`,
            arrivals,
            raw: { scaling_mode: mode, min_size: min, max_size: 8, target_backlog_per_instance: 40, scale_up_large_adjustment: large },
          });
        }
      }
    }
  }
  return out;
}

test("invariants: capacity within [min, max], cooldowns and warmups respected, scale-in only on a breaching low alarm", () => {
  for (const { name, raw, arrivals } of scenarios()) {
    for (const scaleIn of ["cooperative", "unprotected"] as const) {
      const vars = toScalingVariables(raw);
      const result = simulate(vars, arrivals, { ...BASE_MODEL, scaleIn });
      const label = `${name}/${scaleIn}`;
      for (const m of result.minutes) {
        assert.ok(m.desired >= vars.minSize && m.desired <= vars.maxSize, `${label} minute ${m.minute}: desired ${m.desired}`);
        const active = m.inService + m.pending;
        assert.ok(active >= vars.minSize && active <= vars.maxSize, `${label} minute ${m.minute}: ${active} instances`);
        // Volunteers are still in the group: they never take it over max_size.
        assert.ok(active + m.leaving <= vars.maxSize, `${label} minute ${m.minute}: ${active} + ${m.leaving} leaving`);
        if (scaleIn === "unprotected") assert.equal(m.leaving, 0);
        else assert.equal(m.draining, 0);
      }
      checkStepTiming(label, vars, result, scaleIn);
      checkScaleInOnLowAlarm(label, vars, result, arrivals.length);
    }
  }
});

/**
 * Step mode. Scale-down (simple scaling): actions at least the cooldown apart. Scale-up (step scaling with an
 * estimated instance warmup): it never adds more than a step beyond the instances already in the group; and with
 * one step size and unprotected scale-in (no volunteer can be called back: every scale-up launches), two scale-ups
 * are at least the warmup apart — the second needs the first one's instance warmed up.
 */
function checkStepTiming(label: string, vars: ReturnType<typeof toScalingVariables>, result: SimulationResult, scaleIn: ScaleInMode): void {
  if (vars.scalingMode !== "step") return;
  const downs = result.actions.filter((a) => a.policy === "scale-down");
  for (let i = 1; i < downs.length; i++) {
    const gap = downs[i]!.minute - downs[i - 1]!.minute;
    assert.ok(gap * 60 >= vars.scaleDownCooldownSeconds, `${label}: scale-downs ${gap} min apart`);
  }
  const oneStep = vars.scaleUpLargeAdjustment === vars.scaleUpAdjustment && scaleIn === "unprotected";
  let previous: (typeof result.actions)[number] | undefined;
  for (const action of result.actions) {
    if (action.policy !== "scale-up") {
      previous = undefined; // another policy moved desired: the next scale-up starts afresh
      continue;
    }
    const m = result.minutes[action.minute]!;
    const running = m.inService + m.pending + m.leaving;
    assert.ok(action.to <= running + vars.scaleUpLargeAdjustment, `${label}: scale-up to ${action.to} with ${running} running`);
    if (oneStep && previous) {
      const gap = action.minute - previous.minute;
      assert.ok(gap * 60 >= vars.scaleUpCooldownSeconds, `${label}: scale-ups ${gap} min apart`);
    }
    previous = action;
  }
}

/**
 * Every policy scale-in happened while its low alarm breached — recomputed here from the recorded series, not from
 * the alarm module: the datapoints the alarm could see (lag 1) over its evaluation periods were all below threshold.
 */
function checkScaleInOnLowAlarm(label: string, vars: ReturnType<typeof toScalingVariables>, result: SimulationResult, minutes: number): void {
  const lag = BASE_MODEL.metricDelay as number;
  const step = vars.scalingMode === "step";
  const periods = step ? vars.scaleDownEvaluationPeriods : 15;
  const threshold = step ? vars.scaleDownThreshold : 0.9 * vars.targetBacklogPerInstance;
  for (const action of result.actions.filter((a) => a.policy === "scale-down" || a.policy === "tt-low")) {
    assert.equal(action.direction, "in");
    const last = action.minute - lag;
    assert.ok(last - periods + 1 >= 0, `${label}: scale-in at ${action.minute} before the alarm had ${periods} periods`);
    for (let j = last - periods + 1; j <= last; j++) {
      const m = result.minutes[j]!;
      const backlog = m.depth + m.inFlight;
      // GroupInServiceInstances counts volunteers: they are InService until terminated.
      const value = step ? (vars.scaleDownMetric === "backlog" ? backlog : m.depth) : backlog / (m.inService + m.leaving);
      assert.ok(value < threshold, `${label}: scale-in at ${action.minute} but minute ${j} read ${value} ≥ ${threshold}`);
    }
  }
  assert.ok(result.minutes.length === minutes);
}

test("min_size 0: from zero instances a backlog triggers a launch and the first job waits at least the boot time", () => {
  for (const mode of ["step", "target_tracking"]) {
    const vars = toScalingVariables({ scaling_mode: mode, min_size: 0, max_size: 4 });
    // A trickle: 5 jobs a minute, far below the step threshold (100) and the tracking target.
    const result = simulate(vars, new Array(60).fill(5), BASE_MODEL);
    assert.equal(result.minutes[0]!.inService + result.minutes[0]!.pending, 0, mode);
    const first = result.actions[0];
    assert.ok(first, `${mode}: no scaling action`);
    assert.equal(first.policy, "activation");
    assert.deepEqual([first.from, first.to], [0, 1]);
    // 2 periods of data (minutes 0, 1) seen with 1 minute lag: ALARM at the end of minute 2, launch at 3, ready at 11.
    assert.equal(first.minute, 2);
    const firstStart = result.minutes.findIndex((m) => m.started > 0);
    assert.equal(firstStart, 11, mode);
    const summary = summarize(result, { slaSeconds: 300, pricePerHour: 1 });
    // The first job arrived at t = 0 and started at t = 11 min: the cold start is paid in full.
    assert.ok(summary.maxWaitSeconds >= BASE_MODEL.bootSeconds, `${mode}: max wait ${summary.maxWaitSeconds}`);
    assert.equal(summary.maxWaitSeconds, 660);
    assert.ok(summary.minutesOverSla > 0);
  }
});

test("min_size 0: the activation stops once desired is above 0, so scale-ups during the first boot stand", () => {
  // No launch hook, so the first instance is InService 2 min after launch, long before it serves (boot 8 min).
  // 200 jobs/min against a fleet of zero. Visible: 200, 400, … The activation alarm (2 periods, lag 1) sees
  // desired 0 with a backlog in minutes 0–1: ALARM at the end of minute 2 → desired 1 (launch at 3, InService at 5).
  // At the end of minute 3 it still sees desired 0 (minutes 1–2) and stays in ALARM, but adding to "warmed-up 0 +
  // 1" changes nothing. The step alarm (visible > 100) is in ALARM from minute 2 on; its warm-up (300 s) counts
  // from InService, so the instance of minute 3 is warmed up at 10: at the end of minute 9, 1 + 1 → 2 (launch at 10,
  // InService 12, warmed up 17); then every 7 minutes, up to max.
  const vars = toScalingVariables({ min_size: 0, max_size: 4, launch_hook_timeout_seconds: 0 });
  const result = simulate(vars, new Array(40).fill(200), BASE_MODEL);
  assert.deepEqual(
    result.actions.map((a) => [a.minute, a.policy, a.from, a.to]),
    [[2, "activation", 0, 1], [9, "scale-up", 1, 2], [16, "scale-up", 2, 3], [23, "scale-up", 3, 4]],
  );
  assert.equal(result.minutes[3]!.alarms.activation, "ALARM");
  assert.equal(result.minutes[4]!.alarms.activation, "OK");
});

test("alarm: M of N periods, period statistics, lag, missing data", () => {
  const spec: AlarmSpec = { name: "a", statistic: "Average", periodSeconds: 120, evaluationPeriods: 2, threshold: 10, comparison: "GreaterThanThreshold" };
  const data = [0, 30, 0, 30, 0, 0];
  // Periods (2 min): [0,1] avg 15, [2,3] avg 15, [4,5] avg 0.
  assert.equal(evaluateAlarm(spec, data, 3, 0).state, "ALARM");
  // With a minute of lag only period [0,1] is complete: 1 breaching of the 2 needed.
  assert.equal(evaluateAlarm(spec, data, 3, 1).state, "OK");
  assert.equal(evaluateAlarm(spec, data, 5, 0).state, "OK");
  assert.equal(evaluateAlarm({ ...spec, statistic: "Maximum", threshold: 29 }, data, 5, 0).state, "OK");
  assert.equal(evaluateAlarm({ ...spec, datapointsToAlarm: 1 }, data, 5, 0).state, "ALARM");
  assert.equal(evaluateAlarm({ ...spec, statistic: "Sum", threshold: 29 }, data, 3, 0).state, "ALARM");
  const gaps = [undefined, undefined, undefined, undefined];
  assert.equal(evaluateAlarm(spec, gaps, 3, 0).state, "INSUFFICIENT_DATA");
  assert.equal(evaluateAlarm({ ...spec, treatMissingData: "breaching" }, gaps, 3, 0).state, "ALARM");
  assert.equal(evaluateAlarm({ ...spec, treatMissingData: "notBreaching" }, gaps, 3, 0).state, "OK");
  // Before the run there is no history, whatever the treatment: no alarm in the first minute.
  assert.equal(evaluateAlarm({ ...spec, periodSeconds: 60, treatMissingData: "breaching" }, [50], 0, 0).state, "OK");
});

test("queue: jobs are conserved and waits follow FIFO order", () => {
  const queue = new FluidQueue();
  const arrivals = [50, 0, 120, 10, 0, 0, 300, 5];
  const capacity = [0, 20, 60, 60, 200, 0, 100, 400];
  let started = 0;
  arrivals.forEach((a, k) => {
    const out = queue.step(a, capacity[k]!);
    started += out.started;
    const arrived = arrivals.slice(0, k + 1).reduce((x, y) => x + y, 0);
    assert.ok(Math.abs(arrived - started - out.depth) < 1e-6, `minute ${k}`);
  });
  const jobs = [...queue.waits, ...queue.pendingWaits()].reduce((sum, s) => sum + s.jobs, 0);
  assert.ok(Math.abs(jobs - 485) < 1e-6);
  // The 50 jobs of minute 0 wait for minute 1's 20 starts and minute 2's: nobody starts before minute 1.
  assert.ok(queue.waits.every((s) => s.fromWait >= 0 && s.toWait >= 0));
  assert.ok(waitQuantile(queue.waits, 0) >= 0);
  assert.ok(waitQuantile(queue.waits, 1) >= 1, "minute-0 jobs waited at least a minute");
});

test("load profiles: CSV with header and timestamps, spike and diurnal shapes", () => {
  assert.deepEqual(parseArrivalsCsv("minute,arrivals\n2024-05-01T10:00Z,12\n# gap\n\n2024-05-01T10:01Z,0\n7\n", "x.csv"), [12, 0, 7]);
  assert.throws(() => parseArrivalsCsv("a\n1\n-3\n", "bad.csv"), ConfigError);
  assert.throws(() => parseArrivalsCsv("", "empty.csv"), ConfigError);
  const spike = arrivalsPerMinute({ kind: "spike", ratePerMinute: 10, minutes: 100, multiple: 10, startMinute: 20, durationMinutes: 30 });
  assert.deepEqual([spike[19], spike[20], spike[49], spike[50]], [10, 100, 100, 10]);
  const day = arrivalsPerMinute({ kind: "diurnal", ratePerMinute: 100, minutes: 1440, amplitude: 0.5, troughMinute: 240 });
  assert.ok(Math.abs(day[240]! - 50) < 1e-9 && Math.abs(day[960]! - 150) < 1e-9);
  assert.ok(Math.abs(day.reduce((a, b) => a + b, 0) / 1440 - 100) < 1e-6);
});

test("variables: fallbacks for undeclared ones, every problem reported", () => {
  const vars = toScalingVariables({});
  assert.equal(vars.scalingMode, "step");
  assert.equal(vars.scaleUpThreshold, 100);
  assert.equal(vars.scaleUpLargeAdjustment, vars.scaleUpAdjustment, "0 (off) means the same step at any size");
  assert.equal(vars.scaleUpLargeAdjustment, 1);
  assert.throws(
    () => toScalingVariables({ scaling_mode: "predictive", min_size: 9, scale_up_period_seconds: 90 }),
    (err: unknown) => err instanceof ConfigError && err.issues.length === 3,
  );
});

test("variables: the fallbacks mirror terraform/variables.tf, so a run without terraform/ means the same", async () => {
  const declared = await readVariableDefaults(path.join(import.meta.dirname, "..", "terraform"));
  for (const [name, fallback] of Object.entries(FALLBACKS)) {
    assert.ok(name in declared, `terraform/ no longer declares ${name}`);
    assert.equal(declared[name], fallback, name);
  }
});

test("CLI: default spike run compares step and target tracking, with the price's date and the sensitivity, in text, JSON and HTML", async () => {
  const outDir = await mkdtemp(path.join(tmpdir(), "scaling-"));
  try {
    const cli = path.join(import.meta.dirname, "..", "scripts", "simulate-scaling.ts");
    const cliRun = (...extra: string[]) =>
      run(process.execPath, ["--import", "tsx", cli, "--profile", "spike", "--out-dir", outDir, "--bench", path.join(outDir, "none.json"), ...extra], {
        cwd: path.join(import.meta.dirname, ".."),
      });
    const { stdout } = await cliRun();
    interface Spread {
      min: number;
      max: number;
    }
    interface Line {
      price_per_hour: number;
      price_date: string;
      variants: Array<{ name: string; costUsd: number; p95WaitSeconds: number; instanceHours: number; p95_wait_s: Spread; instance_hours: Spread; price_date: string }>;
    }
    const last = JSON.parse(stdout.trim().split("\n").at(-1)!) as Line;
    assert.deepEqual(last.variants.map((v) => v.name.split(",")[0]), ["step", "target tracking"]);
    assert.deepEqual([last.price_per_hour, last.price_date], [HOURLY_PRICE_USD["p5.48xlarge"], PRICE_TABLE_DATE]);
    for (const v of last.variants) {
      assert.ok(v.costUsd > 0);
      assert.equal(v.price_date, PRICE_TABLE_DATE);
      // The default inputs (boot 15 min, typical delay) are a point of the grid: inside the spread.
      assert.ok(v.p95_wait_s.min <= v.p95WaitSeconds && v.p95WaitSeconds <= v.p95_wait_s.max, `${v.name} p95`);
      assert.ok(v.instance_hours.min <= v.instanceHours && v.instanceHours <= v.instance_hours.max, `${v.name} instance-hours`);
    }
    assert.match(stdout, new RegExp(`price of ${PRICE_TABLE_DATE}`));
    assert.match(stdout, /^sensitivity, min – max over metric delay 1, 2, 3, 4 min and typical × boot 8, 15, 20 min/m);
    assert.match(stdout, /^assumed: target-tracking alarms 3 × 1 min/m);
    const json = JSON.parse(await readFile(path.join(outDir, "spike.json"), "utf8")) as { variants: Array<{ series: { depth: number[] }; sensitivity: { points: unknown[] } }> };
    assert.equal(json.variants[0]!.series.depth.length, 240);
    assert.equal(json.variants[0]!.sensitivity.points.length, 15);
    const html = await readFile(path.join(outDir, "report.html"), "utf8");
    assert.ok(html.includes("<svg") && !html.includes("<script"));
    assert.ok(html.includes("<h2>Sensitivity</h2>") && html.includes(`price of ${PRICE_TABLE_DATE}`));
    assert.ok((await stat(path.join(outDir, "report.html"))).size > 10_000);

    const today = () => new Date().toISOString().slice(0, 10);
    const before = today();
    const priced = await cliRun("--price", "40", "--single");
    const line = JSON.parse(priced.stdout.trim().split("\n").at(-1)!) as Line;
    assert.equal(line.price_per_hour, 40);
    assert.ok([before, today()].includes(line.price_date), `--price is dated to the run, not ${line.price_date}`);
    assert.match(priced.stdout, /price: \$40\/h \(--price, price of /);
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});
