/**
 * The scaling simulator's uncertain inputs: dated prices, boot in phases with warm-up counted from InService and
 * the launch hook, seeded metric delays, the idle-queue sleep and wake-up, warm-up warnings, and the sensitivity
 * sweep. Pure and fast.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../shared/errors.ts";
import { AutoScalingGroup } from "../scripts/scaling/auto-scaling-group.ts";
import { hourlyPrice, PRICE_TABLE_DATE } from "../scripts/scaling/instance-pricing.ts";
import { delaySampler, MAX_TYPICAL_DELAY_MINUTES, MetricFeed, QUEUE_SLEEP_MINUTES, WAKE_UP_MAX_DELAY_MINUTES } from "../scripts/scaling/metric-delay.ts";
import { toScalingVariables } from "../scripts/scaling/scaling-variables.ts";
import { SPREAD_FIGURES, sweep } from "../scripts/scaling/sensitivity.ts";
import { simulate, type ModelOptions } from "../scripts/scaling/simulation.ts";
import { runVariant } from "../scripts/scaling/variant.ts";
import { warmupWarnings } from "../scripts/scaling/warmup-warnings.ts";

test("price: the table is dated and reflects AWS's 2025 P4/P5 cut; --price is dated to the run", () => {
  const p5 = hourlyPrice("p5.48xlarge", undefined, "2031-01-02");
  assert.deepEqual([p5.usdPerHour, p5.date], [55.04, PRICE_TABLE_DATE]);
  assert.match(PRICE_TABLE_DATE, /^\d{4}-\d{2}-\d{2}$/);
  assert.match(p5.source, /us-east-1/);
  assert.equal(hourlyPrice("p4d.24xlarge", undefined, "2031-01-02").usdPerHour, 21.96);
  assert.deepEqual(hourlyPrice("p5.48xlarge", 40, "2031-01-02"), { usdPerHour: 40, date: "2031-01-02", source: "--price" });
  assert.throws(() => hourlyPrice("x9.huge", undefined, "2031-01-02"), ConfigError);
});

test("metric delay: seeded, bounded to 1–10 min, mostly 1–4 min with a tail; a fixed delay is fixed", () => {
  const draw = (seed: number) => Array.from({ length: 5000 }, delaySampler("typical", seed));
  const a = draw(7);
  assert.deepEqual(draw(7), a, "same seed, same delays");
  assert.notDeepEqual(draw(8), a, "another seed, other delays");
  assert.ok(a.every((d) => Number.isInteger(d) && d >= 1 && d <= MAX_TYPICAL_DELAY_MINUTES));
  const withinFour = a.filter((d) => d <= 4).length / a.length;
  assert.ok(withinFour > 0.9 && withinFour < 0.94, `share within 1–4 min: ${withinFour}`);
  assert.ok(a.some((d) => d > 4), "a tail");
  assert.ok(Array.from({ length: 50 }, delaySampler(3, 7)).every((d) => d === 3));

  // What the alarms see never goes backwards, and is never more than the drawn delay behind.
  const feed = new MetricFeed({ delay: "typical", seed: 3 });
  let horizon = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < 2000; k++) {
    assert.equal(feed.record(k, true), true);
    const lag = feed.lagAt(k);
    assert.ok(lag >= 0 && lag <= MAX_TYPICAL_DELAY_MINUTES, `minute ${k}: lag ${lag}`);
    assert.ok(k - lag >= horizon, `minute ${k}: the alarms saw less than before`);
    horizon = k - lag;
  }
});

test("idle queue: no SQS datapoints after 6 idle hours; after waking, the first ones are late by up to 15 min", () => {
  const feed = new MetricFeed({ delay: 0, seed: 5 });
  assert.equal(feed.record(0, true), true);
  for (let k = 1; k < QUEUE_SLEEP_MINUTES; k++) assert.equal(feed.record(k, false), true, `minute ${k}`);
  assert.equal(feed.record(QUEUE_SLEEP_MINUTES, false), false, "asleep after 360 idle minutes");

  const woken = new MetricFeed({ delay: 0, seed: 5, idleBeforeMinutes: 400 });
  assert.equal(woken.record(0, false), false, "idle 400 min before the start: asleep");
  assert.equal(woken.record(5, true), true);
  const [wake] = woken.wakeUps;
  assert.ok(wake && wake.minute === 5 && wake.delayMinutes >= 1 && wake.delayMinutes <= WAKE_UP_MAX_DELAY_MINUTES);
  for (let k = 5; k < 5 + wake.delayMinutes; k++) assert.ok(k - woken.lagAt(k) <= 4, `minute ${k}: saw the woken queue early`);
  assert.equal(woken.lagAt(5 + wake.delayMinutes), 0, "then on time again (delay 0)");

  // min_size 0: jobs arrive from minute 30 after a quiet night. Awake, the activation alarm (2 periods, delay 1)
  // fires at the end of minute 32; asleep, not before the woken queue's datapoints show.
  const vars = toScalingVariables({ min_size: 0, max_size: 2 });
  const arrivals = Array.from({ length: 120 }, (_, k) => (k < 30 ? 0 : 5));
  const model: ModelOptions = { throughputJobsPerSecond: 1, bootSeconds: 480, jobSeconds: 20, metricDelay: 1, seed: 5 };
  const awake = simulate(vars, arrivals, model);
  const asleep = simulate(vars, arrivals, { ...model, idleBeforeMinutes: 400 });
  const first = (r: typeof awake) => [r.actions[0]?.minute, r.actions[0]?.policy];
  assert.deepEqual(first(awake), [32, "activation"]);
  assert.equal(awake.minutes[10]!.sqsPublished, true);
  assert.equal(asleep.minutes[10]!.sqsPublished, false);
  const late = asleep.wakeUps[0]!;
  assert.equal(late.minute, 30);
  assert.deepEqual(first(asleep), [Math.max(32, 30 + late.delayMinutes), "activation"]);
});

test("boot in phases: without a hook an instance is InService (counted, warming) while its model loads; with one it waits", () => {
  const group = (launchHookTimeoutMinutes: number) => {
    const g = new AutoScalingGroup({ minSize: 1, maxSize: 4, bootMinutes: 10, ec2InServiceMinutes: 2, launchHookTimeoutMinutes, drainMinutes: 1, leaveMinutes: 2, initialInService: 2, scaleIn: "cooperative" });
    g.setDesired(3, 0);
    return g;
  };
  const noHook = group(0);
  noHook.advance(2);
  assert.deepEqual(noHook.counts(), { pending: 0, loading: 1, inService: 2, leaving: 0, draining: 0 });
  assert.equal(noHook.inServiceMetric(), 3, "GroupInServiceInstances counts the loading instance");
  assert.deepEqual([noHook.warmedUp(6, 5), noHook.warmedUp(7, 5)], [2, 3], "warm-up counts from InService (minute 2)");
  noHook.advance(10);
  assert.equal(noHook.counts().inService, 3);

  const hook = group(30);
  hook.advance(2);
  assert.deepEqual(hook.counts(), { pending: 1, loading: 0, inService: 2, leaving: 0, draining: 0 });
  assert.equal(hook.inServiceMetric(), 2);
  assert.deepEqual([hook.warmedUp(14, 5), hook.warmedUp(15, 5)], [2, 3], "InService at 10, when its model is ready");
  hook.advance(10);
  assert.deepEqual(hook.counts(), { pending: 0, loading: 0, inService: 3, leaving: 0, draining: 0 });

  // A hook shorter than the boot: abandoned at the timeout and replaced; the model is never ready.
  const short = group(5);
  short.advance(5);
  assert.deepEqual(short.counts(), { pending: 1, loading: 0, inService: 2, leaving: 0, draining: 0 });
  short.advance(10);
  assert.equal(short.counts().inService, 2, "the replacement, launched at 5, is abandoned at 10 in turn");
});

test("warm-up warnings: a policy's warm-up shorter than the boot it cannot see, or a hook shorter than the boot", () => {
  const model = { bootSeconds: 900 };
  const tracking = (raw: Record<string, unknown>) => toScalingVariables({ scaling_mode: "target_tracking", ...raw });
  assert.deepEqual(warmupWarnings(tracking({}), model), [], "with the launch hook, InService is when vLLM serves");
  const [warning, ...rest] = warmupWarnings(tracking({ launch_hook_timeout_seconds: 0 }), model);
  assert.match(warning ?? "", /^target_tracking_warmup_seconds 600 s is shorter than boot/);
  assert.match(warning ?? "", /for 180 s the policy counts an instance that takes no jobs/);
  assert.deepEqual(rest, []);
  assert.deepEqual(warmupWarnings(tracking({ launch_hook_timeout_seconds: 0, target_tracking_warmup_seconds: 780 }), model), []);
  const step = warmupWarnings(toScalingVariables({ launch_hook_timeout_seconds: 0, min_size: 0 }), model);
  assert.equal(step.length, 2);
  assert.match(step[0]!, /^scale_up_cooldown_seconds/);
  assert.match(step[1]!, /^instance_warmup_seconds/);
  assert.match(warmupWarnings(tracking({ launch_hook_timeout_seconds: 600 }), model)[0] ?? "", /every launch is abandoned/);
});

test("sensitivity: every grid point is run, the spread bounds them, and the run at the same inputs is one of them", () => {
  const arrivals = Array.from({ length: 180 }, (_, k) => (k >= 30 && k < 60 ? 400 : 40));
  const vars = toScalingVariables({ scaling_mode: "target_tracking", target_backlog_per_instance: 15, max_size: 8 });
  const model: ModelOptions = { throughputJobsPerSecond: 1, bootSeconds: 900, jobSeconds: 20, metricDelay: "typical", seed: 11 };
  const grid = { metricDelays: [1, 4, "typical"] as const, bootMinutes: [8, 15] };
  const run = runVariant("v", vars, arrivals, model, { slaSeconds: 300, price: hourlyPrice("p5.48xlarge", undefined, "2031-01-02"), grid });
  const { points, spread } = run.sensitivity;
  assert.equal(points.length, 6);
  for (const figure of SPREAD_FIGURES) {
    for (const p of points) assert.ok(spread[figure].min <= p.summary[figure] && p.summary[figure] <= spread[figure].max, figure);
  }
  const same = points.find((p) => p.bootMinutes === 15 && p.metricDelay === "typical");
  assert.deepEqual(same?.summary, run.summary, "seeded: the same inputs give the same run");
  assert.ok(spread.p95WaitSeconds.max > spread.p95WaitSeconds.min, "boot and delay move the p95 wait");
  assert.deepEqual(sweep(vars, arrivals, model, { slaSeconds: 300, pricePerHour: 55.04 }, grid), run.sensitivity);
});
