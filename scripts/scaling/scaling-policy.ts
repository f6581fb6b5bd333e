/**
 * The ASG's scaling policies, replayed: which alarms exist for a variable set, and what each minute's alarm states
 * do to desired capacity.
 *
 * step (terraform `scaling_mode = "step"`): two alarms on ApproximateNumberOfMessagesVisible —
 *   scale-up   Average > scale_up_threshold for scale_up_evaluation_periods × scale_up_period_seconds,
 *   scale-down Average < scale_down_threshold for scale_down_evaluation_periods × scale_down_period_seconds —
 *   each invoking a policy that adds / removes a fixed number of instances (scale_up_large_adjustment instead when
 *   the breaching value is ≥ threshold × scale_up_large_threshold_multiple). Cooldown semantics (simple scaling):
 *   after a scaling activity no further scale-up or scale-down policy acts until that activity's cooldown
 *   (scale_up_cooldown_seconds or scale_down_cooldown_seconds) has passed. AWS starts the cooldown when the
 *   activity completes (instance launched, a minute or two); the model starts it at the decision. While the alarm
 *   stays in ALARM the policy is invoked again every minute, so a breach that outlasts the cooldown adds capacity
 *   again even if the last instance is still booting: the over-scaling that boot times of minutes invite.
 *
 * target_tracking: the alarms AWS creates for a target-tracking policy on backlog per instance
 *   ((visible + in flight) ÷ InService), target T = target_backlog_per_instance:
 *   high  Average > T for 3 × 60 s  →  desired = ceil(warmed-up InService × metric ÷ T), if above current desired;
 *   low   Average < 0.9 T for 15 × 60 s  →  scale in gradually: at most max(1, 10 % of desired) per minute, never
 *   below ceil(InService × metric ÷ T), and not while an instance is still warming up.
 *   Instances launched less than target_tracking_warmup_seconds ago are "warming" and left out of the current
 *   capacity used for scale-out (AWS semantics: repeated breaches while instances warm up do not stack). AWS counts
 *   warmup from InService; this model counts it from launch, because without a launch lifecycle hook an instance is
 *   InService a minute or so after launch and does its model load inside the warmup.
 *
 * min_size = 0 (both modes): an activation alarm, Visible Maximum > 0 for 1 × 60 s, sets desired to 1 when the group
 * has no instances (a separate step policy: no cooldown). Target tracking cannot do this itself — its metric is
 * undefined with 0 InService — so the cold start (boot + model load) is paid in full by the first job.
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

export interface PolicyOptions {
  metricLagMinutes: number;
}

export interface ScalingPolicy {
  readonly alarms: AlarmBinding[];
  /** At the end of minute `minute`: evaluate alarms, maybe change the group's desired capacity from minute + 1. */
  decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics): PolicyStep;
}

export const ALARM = { up: "scale-up", down: "scale-down", high: "tt-high", low: "tt-low", activation: "activation" } as const;

/** Target tracking's fixed alarm shapes (not configurable in AWS). */
const TT_HIGH_PERIODS = 3;
const TT_LOW_PERIODS = 15;
const TT_LOW_FRACTION = 0.9;
const TT_SCALE_IN_FRACTION = 0.1;

export function createScalingPolicy(vars: ScalingVariables, options: PolicyOptions): ScalingPolicy {
  return vars.scalingMode === "step" ? new StepPolicy(vars, options) : new TargetTrackingPolicy(vars, options);
}

function activationAlarm(): AlarmBinding {
  return {
    metric: "visible",
    spec: { name: ALARM.activation, statistic: "Maximum", periodSeconds: 60, evaluationPeriods: 1, threshold: 0, comparison: "GreaterThanThreshold" },
  };
}

abstract class BasePolicy implements ScalingPolicy {
  readonly alarms: AlarmBinding[] = [];

  constructor(
    protected readonly vars: ScalingVariables,
    private readonly options: PolicyOptions,
  ) {}

  protected evaluate(minute: number, metrics: ScalingMetrics): Record<string, { state: AlarmState; value: number | undefined }> {
    const out: Record<string, { state: AlarmState; value: number | undefined }> = {};
    for (const { spec, metric } of this.alarms) {
      const e = evaluateAlarm(spec, metrics[metric], minute, this.options.metricLagMinutes);
      out[spec.name] = { state: e.state, value: e.latestValue };
    }
    return out;
  }

  /** Scale from zero: the activation policy, shared by both modes. */
  protected activate(minute: number, group: AutoScalingGroup, state: AlarmState | undefined): ScalingAction | undefined {
    if (state !== "ALARM" || group.desired > 0) return undefined;
    return this.apply(minute, group, ALARM.activation, 1, "visible messages with no instances");
  }

  protected apply(minute: number, group: AutoScalingGroup, policy: string, target: number, reason: string): ScalingAction | undefined {
    const from = group.desired;
    const to = group.setDesired(target, minute + 1);
    if (to === from) return undefined;
    return { minute, policy, direction: to > from ? "out" : "in", from, to, reason };
  }

  abstract decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics): PolicyStep;
}

class StepPolicy extends BasePolicy {
  /** Minute (fractional) before which simple-scaling cooldown blocks both policies. */
  private cooldownUntil = Number.NEGATIVE_INFINITY;

  constructor(vars: ScalingVariables, options: PolicyOptions) {
    super(vars, options);
    this.alarms.push(
      {
        metric: "visible",
        spec: {
          name: ALARM.up,
          statistic: "Average",
          periodSeconds: vars.scaleUpPeriodSeconds,
          evaluationPeriods: vars.scaleUpEvaluationPeriods,
          threshold: vars.scaleUpThreshold,
          comparison: "GreaterThanThreshold",
        },
      },
      {
        metric: "visible",
        spec: {
          name: ALARM.down,
          statistic: "Average",
          periodSeconds: vars.scaleDownPeriodSeconds,
          evaluationPeriods: vars.scaleDownEvaluationPeriods,
          threshold: vars.scaleDownThreshold,
          comparison: "LessThanThreshold",
        },
      },
    );
    if (vars.minSize === 0) this.alarms.push(activationAlarm());
  }

  decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics): PolicyStep {
    const alarms = this.evaluate(minute, metrics);
    const states = Object.fromEntries(Object.entries(alarms).map(([k, v]) => [k, v.state]));
    const activation = this.activate(minute, group, alarms[ALARM.activation]?.state);
    if (activation) return { action: activation, alarms: states };
    if (minute + 1 < this.cooldownUntil) return { alarms: states };
    const v = this.vars;
    const up = alarms[ALARM.up];
    if (up?.state === "ALARM") {
      const large = up.value !== undefined && up.value >= v.scaleUpThreshold * v.scaleUpLargeThresholdMultiple;
      const step = large ? v.scaleUpLargeAdjustment : v.scaleUpAdjustment;
      const action = this.apply(minute, group, ALARM.up, group.desired + step, `visible ${fmt(up.value)} > ${v.scaleUpThreshold}`);
      if (action) this.cooldownUntil = minute + 1 + v.scaleUpCooldownSeconds / 60;
      return { action, alarms: states };
    }
    const down = alarms[ALARM.down];
    if (down?.state === "ALARM") {
      const action = this.apply(minute, group, ALARM.down, group.desired - v.scaleDownAdjustment, `visible ${fmt(down.value)} < ${v.scaleDownThreshold}`);
      if (action) this.cooldownUntil = minute + 1 + v.scaleDownCooldownSeconds / 60;
      return { action, alarms: states };
    }
    return { alarms: states };
  }
}

class TargetTrackingPolicy extends BasePolicy {
  private readonly warmupMinutes: number;

  constructor(vars: ScalingVariables, options: PolicyOptions) {
    super(vars, options);
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
    if (vars.minSize === 0) this.alarms.push(activationAlarm());
  }

  decide(minute: number, group: AutoScalingGroup, metrics: ScalingMetrics): PolicyStep {
    const alarms = this.evaluate(minute, metrics);
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
      const needed = Math.ceil((group.counts().inService * low.value) / target);
      const floor = group.desired - Math.max(1, Math.floor(group.desired * TT_SCALE_IN_FRACTION));
      const action = this.apply(minute, group, ALARM.low, Math.max(needed, floor), `backlog/instance ${fmt(low.value)} < ${fmt(target * TT_LOW_FRACTION)}`);
      return { action, alarms: states };
    }
    return { alarms: states };
  }
}

function fmt(value: number | undefined): string {
  return value === undefined ? "n/a" : String(Math.round(value * 10) / 10);
}
