/**
 * The ASG's scaling policies, replayed: which alarms exist for a variable set, and what each minute's alarm states
 * do to desired capacity, as terraform/scaling.tf builds them.
 *
 * step (`scaling_mode = "step"`): two alarms, statistic Maximum —
 *   scale-up   ApproximateNumberOfMessagesVisible > scale_up_threshold for scale_up_evaluation_periods × scale_up_period_seconds  → a StepScaling
 *              policy: +scale_up_adjustment, or +scale_up_large_adjustment when the breaching value is at least
 *              threshold × scale_up_large_threshold_multiple. Step policies have no cooldown; their estimated
 *              instance warmup (scale_up_cooldown_seconds) keeps new instances out of "current capacity": desired
 *              becomes max(desired, warmed-up instances + step). So while the alarm stays in ALARM (the action is
 *              invoked every minute), the same step adds again only once the last launch has warmed up, and a
 *              bigger step adds at once. A warmup shorter than boot + model load adds again while instances boot.
 *   scale-down scale_down_metric < scale_down_threshold for scale_down_evaluation_periods ×
 *              scale_down_period_seconds, where the metric is "backlog" (metric math: visible + NotVisible, the
 *              default: a busy fleet never reads as idle) or "visible" → a SimpleScaling policy: −scale_down_adjustment, then no further simple-scaling activity until
 *              scale_down_cooldown_seconds have passed. AWS starts the cooldown when the activity completes; the model
 *              starts it at the decision (terminations start at once; the drain is separate).
 *
 * target_tracking: the alarms AWS creates for a target-tracking policy on backlog per instance
 *   ((visible + in flight) ÷ InService), target T = target_backlog_per_instance:
 *   high  Average > T for 3 × 60 s  →  desired = ceil(warmed-up instances × metric ÷ T), if above current desired;
 *   low   Average < 0.9 T for 15 × 60 s  →  scale in gradually: at most max(1, 10 % of desired) per minute, never
 *   below ceil(InService × metric ÷ T), and not while an instance is still warming up.
 *   ASSUMED, not documented by AWS: the alarm shapes (3 × 1 min, 15 × 1 min at 90 % of the target — what AWS
 *   creates today, visible in CloudWatch, but subject to change) and the scale-in rate (AWS documents only that it
 *   scales in "gradually"). TARGET_TRACKING_ASSUMPTIONS says so in every report.
 *   Instances Pending or InService for less than target_tracking_warmup_seconds are warming and left out of
 *   current capacity. Warm-up counts from InService, as AWS does: without a launch lifecycle hook that is ~2 min
 *   after launch, while the model still loads; with one (terraform's default) it is when vLLM answers /health.
 *
 * min_size = 0 (both modes): an activation alarm on IF(GroupDesiredCapacity < 1, visible + in flight, 0),
 * Maximum, > scale_from_zero_backlog_threshold for scale_up_evaluation_periods × scale_up_period_seconds, invokes a
 * step policy with ChangeInCapacity + scale_up_adjustment and instance_warmup_seconds as its warmup. Gated on
 * desired (not InService), it stops breaching as soon as desired is above 0, not when the first instance has
 * booted; the invocations still due to the metric lag cannot lower capacity (ChangeInCapacity only adds) and add
 * nothing while the first instances warm up. Target tracking cannot scale from zero itself (its metric is undefined
 * with 0 InService), so the first job of a burst pays the cold start — boot plus model load — in full.
 */
import { evaluateAlarm, type AlarmSpec, type AlarmState } from "./alarm.ts";
import type { AutoScalingGroup } from "./auto-scaling-group.ts";
import type { ScalingVariables } from "./scaling-variables.ts";

/** Per-minute datapoints the alarms read (index = minute; undefined = no datapoint). */
export interface ScalingMetrics {
  /** SQS ApproximateNumberOfMessagesVisible. */
  visible: Array<number | undefined>;
  /** Visible + ApproximateNumberOfMessagesNotVisible (in flight). */
  backlog: Array<number | undefined>;
  /** Backlog ÷ GroupInServiceInstances (metric math); missing when none are InService. */
  backlogPerInstance: Array<number | undefined>;
  /** Backlog while desired capacity is 0, else 0 (the activation alarm's metric math). */
  backlogAtZeroDesired: Array<number | undefined>;
}

export interface AlarmBinding {
  spec: AlarmSpec;
  metric: keyof ScalingMetrics;
}

export interface ScalingAction {
  minute: number;
  policy: string;
  direction: "out" | "in";
  from: number;
  to: number;
  reason: string;
}

export interface PolicyStep {
  action?: ScalingAction;
  alarms: Record<string, AlarmState>;
}

export interface ScalingPolicy {
  readonly alarms: AlarmBinding[];
  /**
   * At the end of minute `minute`, the alarms seeing datapoints up to minute − lagMinutes: evaluate them, maybe
   * change the group's desired capacity from minute + 1.
   */
  decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics, lagMinutes: number): PolicyStep;
}

export const ALARM = { up: "scale-up", down: "scale-down", high: "tt-high", low: "tt-low", activation: "activation" } as const;

/** Target tracking's alarm shapes and scale-in rate: not configurable in AWS, and assumed (see above). */
export const TT_HIGH_PERIODS = 3;
export const TT_LOW_PERIODS = 15;
export const TT_LOW_FRACTION = 0.9;
export const TT_SCALE_IN_FRACTION = 0.1;
export const TARGET_TRACKING_ASSUMPTIONS =
  `target-tracking alarms ${TT_HIGH_PERIODS} × 1 min above target / ${TT_LOW_PERIODS} × 1 min below ${TT_LOW_FRACTION * 100} % of it, ` +
  `scale-in ≤ ${TT_SCALE_IN_FRACTION * 100} % of desired a minute (what AWS creates today; not documented)`;

export function createScalingPolicy(vars: ScalingVariables): ScalingPolicy {
  return vars.scalingMode === "step" ? new StepPolicy(vars) : new TargetTrackingPolicy(vars);
}

function activationAlarm(vars: ScalingVariables): AlarmBinding {
  return {
    metric: "backlogAtZeroDesired",
    spec: {
      name: ALARM.activation,
      statistic: "Maximum",
      periodSeconds: vars.scaleUpPeriodSeconds,
      evaluationPeriods: vars.scaleUpEvaluationPeriods,
      treatMissingData: "notBreaching",
      threshold: vars.scaleFromZeroBacklogThreshold,
      comparison: "GreaterThanThreshold",
    },
  };
}

abstract class BasePolicy implements ScalingPolicy {
  readonly alarms: AlarmBinding[] = [];

  constructor(protected readonly vars: ScalingVariables) {}

  protected evaluate(minute: number, metrics: ScalingMetrics, lagMinutes: number): Record<string, { state: AlarmState; value: number | undefined }> {
    const out: Record<string, { state: AlarmState; value: number | undefined }> = {};
    for (const { spec, metric } of this.alarms) {
      const e = evaluateAlarm(spec, metrics[metric], minute, lagMinutes);
      out[spec.name] = { state: e.state, value: e.latestValue };
    }
    return out;
  }

  /** Scale from zero: the activation policy, shared by both modes (a step policy: ChangeInCapacity with warmup). */
  protected activate(minute: number, group: AutoScalingGroup, state: AlarmState | undefined): ScalingAction | undefined {
    if (state !== "ALARM") return undefined;
    const warmupMinutes = this.vars.instanceWarmupSeconds / 60;
    const target = group.warmedUp(minute + 1, warmupMinutes) + this.vars.scaleUpAdjustment;
    if (group.clamp(target) <= group.desired) return undefined;
    return this.apply(minute, group, ALARM.activation, target, "backlog with desired capacity 0");
  }

  protected apply(minute: number, group: AutoScalingGroup, policy: string, target: number, reason: string): ScalingAction | undefined {
    const from = group.desired;
    const to = group.setDesired(target, minute + 1);
    if (to === from) return undefined;
    return { minute, policy, direction: to > from ? "out" : "in", from, to, reason };
  }

  abstract decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics, lagMinutes: number): PolicyStep;
}

class StepPolicy extends BasePolicy {
  /** Minute from which the simple-scaling (scale-down) cooldown no longer blocks. */
  private cooldownUntil = Number.NEGATIVE_INFINITY;
  private readonly upWarmupMinutes: number;

  constructor(vars: ScalingVariables) {
    super(vars);
    this.upWarmupMinutes = vars.scaleUpCooldownSeconds / 60;
    this.alarms.push(
      {
        metric: "visible",
        spec: {
          name: ALARM.up,
          statistic: "Maximum",
          periodSeconds: vars.scaleUpPeriodSeconds,
          evaluationPeriods: vars.scaleUpEvaluationPeriods,
          threshold: vars.scaleUpThreshold,
          comparison: "GreaterThanThreshold",
          treatMissingData: "notBreaching",
        },
      },
      {
        metric: vars.scaleDownMetric,
        spec: {
          name: ALARM.down,
          statistic: "Maximum",
          periodSeconds: vars.scaleDownPeriodSeconds,
          evaluationPeriods: vars.scaleDownEvaluationPeriods,
          threshold: vars.scaleDownThreshold,
          comparison: "LessThanThreshold",
          treatMissingData: "breaching",
        },
      },
    );
    if (vars.minSize === 0) this.alarms.push(activationAlarm(vars));
  }

  decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics, lagMinutes: number): PolicyStep {
    const alarms = this.evaluate(minute, metrics, lagMinutes);
    const states = Object.fromEntries(Object.entries(alarms).map(([k, v]) => [k, v.state]));
    const activation = this.activate(minute, group, alarms[ALARM.activation]?.state);
    if (activation) return { action: activation, alarms: states };
    const v = this.vars;
    const now = minute + 1;
    const up = alarms[ALARM.up];
    if (up?.state === "ALARM") {
      const large = up.value !== undefined && up.value >= v.scaleUpThreshold * v.scaleUpLargeThresholdMultiple;
      const target = group.warmedUp(now, this.upWarmupMinutes) + (large ? v.scaleUpLargeAdjustment : v.scaleUpAdjustment);
      if (group.clamp(target) <= group.desired) return { alarms: states };
      return { action: this.apply(minute, group, ALARM.up, target, `visible ${fmt(up.value)} > ${v.scaleUpThreshold}`), alarms: states };
    }
    const down = alarms[ALARM.down];
    if (down?.state === "ALARM" && now >= this.cooldownUntil) {
      const action = this.apply(minute, group, ALARM.down, group.desired - v.scaleDownAdjustment, `${v.scaleDownMetric} ${fmt(down.value)} < ${v.scaleDownThreshold}`);
      if (action) this.cooldownUntil = now + v.scaleDownCooldownSeconds / 60;
      return { action, alarms: states };
    }
    return { alarms: states };
  }
}

class TargetTrackingPolicy extends BasePolicy {
  private readonly warmupMinutes: number;

  constructor(vars: ScalingVariables) {
    super(vars);
    this.warmupMinutes = Math.ceil(vars.targetTrackingWarmupSeconds / 60);
    const target = vars.targetBacklogPerInstance;
    this.alarms.push(
      {
        metric: "backlogPerInstance",
        spec: { name: ALARM.high, statistic: "Average", periodSeconds: 60, evaluationPeriods: TT_HIGH_PERIODS, threshold: target, comparison: "GreaterThanThreshold" },
      },
      {
        metric: "backlogPerInstance",
        spec: {
          name: ALARM.low,
          statistic: "Average",
          periodSeconds: 60,
          evaluationPeriods: TT_LOW_PERIODS,
          threshold: target * TT_LOW_FRACTION,
          comparison: "LessThanThreshold",
        },
      },
    );
    if (vars.minSize === 0) this.alarms.push(activationAlarm(vars));
  }

  decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics, lagMinutes: number): PolicyStep {
    const alarms = this.evaluate(minute, metrics, lagMinutes);
    const states = Object.fromEntries(Object.entries(alarms).map(([k, v]) => [k, v.state]));
    const activation = this.activate(minute, group, alarms[ALARM.activation]?.state);
    if (activation) return { action: activation, alarms: states };
    const target = this.vars.targetBacklogPerInstance;
    const now = minute + 1;
    const high = alarms[ALARM.high];
    if (high?.state === "ALARM" && high.value !== undefined) {
      const needed = Math.ceil((group.warmedUp(now, this.warmupMinutes) * high.value) / target);
      if (group.clamp(needed) <= group.desired) return { alarms: states };
      const action = this.apply(minute, group, ALARM.high, needed, `backlog/instance ${fmt(high.value)} > ${target}`);
      return { action, alarms: states };
    }
    const low = alarms[ALARM.low];
    if (low?.state === "ALARM" && low.value !== undefined && group.warming(now, this.warmupMinutes) === 0) {
      const needed = Math.ceil((group.inServiceMetric() * low.value) / target);
      const floor = group.desired - Math.max(1, Math.floor(group.desired * TT_SCALE_IN_FRACTION));
      // Scale-in never raises desired, even while volunteers keep more instances InService than desired.
      const to = Math.min(group.desired, Math.max(needed, floor));
      const action = this.apply(minute, group, ALARM.low, to, `backlog/instance ${fmt(low.value)} < ${fmt(target * TT_LOW_FRACTION)}`);
      return { action, alarms: states };
    }
    return { alarms: states };
  }
}

function fmt(value: number | undefined): string {
  return value === undefined ? "n/a" : String(Math.round(value * 10) / 10);
}
