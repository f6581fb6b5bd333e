/**
 * The scaling variables of terraform/ as typed, validated numbers. Input is what `readVariableDefaults` returns
 * (variable defaults, possibly overridden by a .tfvars file) plus `--set name=value` overrides. A variable that
 * terraform/ does not declare falls back to the value in FALLBACKS, which mirrors terraform/variables.tf, so the
 * simulator keeps working while the module evolves; a declared variable with a non-literal value is an error.
 */
import { ConfigError } from "../../shared/errors.ts";

export type ScalingMode = "step" | "target_tracking";
/** What the step scale-down alarm watches: visible + in flight (metric math), or visible only. */
export type ScaleDownMetric = "backlog" | "visible";

export interface ScalingVariables {
  scalingMode: ScalingMode;
  /** Step mode, scale-out alarm: ApproximateNumberOfMessagesVisible > threshold for N periods. */
  scaleUpThreshold: number;
  scaleUpEvaluationPeriods: number;
  scaleUpPeriodSeconds: number;
  /** Instances added per scale-out action. */
  scaleUpAdjustment: number;
  /** Instances added instead when the metric is at least threshold × largeThresholdMultiple (terraform: 0 = off). */
  scaleUpLargeAdjustment: number;
  scaleUpLargeThresholdMultiple: number;
  /** Step mode, scale-in alarm: scaleDownMetric < threshold for N periods. */
  scaleDownMetric: ScaleDownMetric;
  scaleDownThreshold: number;
  scaleDownEvaluationPeriods: number;
  scaleDownPeriodSeconds: number;
  scaleDownAdjustment: number;
  /** Scale-up is a StepScaling policy: this is its estimated instance warmup (AWS step policies have no cooldown). */
  scaleUpCooldownSeconds: number;
  /** Scale-down is a SimpleScaling policy: its cooldown. */
  scaleDownCooldownSeconds: number;
  /** Target-tracking mode: target of (visible + in flight) ÷ InService instances. */
  targetBacklogPerInstance: number;
  targetTrackingWarmupSeconds: number;
  /** With min_size 0: activation when backlog (visible + in flight) exceeds this while no instance is InService. */
  scaleFromZeroBacklogThreshold: number;
  minSize: number;
  maxSize: number;
  /** The group's default instance warm-up, counted from InService; also the scale-from-zero policy's. */
  instanceWarmupSeconds: number;
  lifecycleHookTimeoutSeconds: number;
  /** Launch lifecycle hook: instances stay Pending:Wait until vLLM is ready, at most this long. 0: no hook. */
  launchHookTimeoutSeconds: number;
  gpuInstanceType: string;
}

/** Used only for a variable terraform/ does not declare; mirrors terraform/variables.tf defaults. */
export const FALLBACKS: Readonly<Record<string, number | string>> = {
  scaling_mode: "step",
  scale_up_threshold: 100,
  scale_up_evaluation_periods: 2,
  scale_up_period_seconds: 60,
  scale_up_adjustment: 1,
  scale_up_large_adjustment: 0,
  scale_up_large_threshold_multiple: 5,
  scale_down_metric: "backlog",
  scale_down_threshold: 10,
  scale_down_evaluation_periods: 5,
  scale_down_period_seconds: 60,
  scale_down_adjustment: 1,
  scale_up_cooldown_seconds: 300,
  scale_down_cooldown_seconds: 600,
  target_backlog_per_instance: 768,
  target_tracking_warmup_seconds: 600,
  scale_from_zero_backlog_threshold: 0,
  min_size: 2,
  max_size: 8,
  instance_warmup_seconds: 480,
  lifecycle_hook_timeout_seconds: 300,
  launch_hook_timeout_seconds: 1800,
  gpu_instance_type: "p5.48xlarge",
};

/** Parse `name=value[,name=value…]` (one `--set` flag) into overrides; numbers stay numbers. */
export function parseAssignments(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new ConfigError([`--set "${part}": expected name=value`]);
    const name = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    out[name] = raw !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

/** Typed variables from raw terraform values; every problem is reported at once. */
export function toScalingVariables(raw: Record<string, unknown>): ScalingVariables {
  const problems: string[] = [];
  const value = (name: string): unknown => (name in raw ? raw[name] : FALLBACKS[name]);
  const num = (name: string, min: number): number => {
    const v = value(name);
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || Number.isNaN(n)) {
      problems.push(`${name}: ${JSON.stringify(v)} is not a number`);
      return Number.NaN;
    }
    if (n < min) problems.push(`${name}: ${n} is below ${min}`);
    return n;
  };
  const period = (name: string): number => {
    const n = num(name, 60);
    if (n % 60 !== 0) problems.push(`${name}: ${n} must be a multiple of 60 (SQS publishes one datapoint a minute)`);
    return n;
  };
  const mode = value("scaling_mode");
  if (mode !== "step" && mode !== "target_tracking") problems.push(`scaling_mode: ${JSON.stringify(mode)} is not "step" or "target_tracking"`);
  const downMetric = value("scale_down_metric");
  if (downMetric !== "backlog" && downMetric !== "visible") problems.push(`scale_down_metric: ${JSON.stringify(downMetric)} is not "backlog" or "visible"`);
  const vars: ScalingVariables = {
    scalingMode: mode === "target_tracking" ? "target_tracking" : "step",
    scaleUpThreshold: num("scale_up_threshold", 0),
    scaleUpEvaluationPeriods: num("scale_up_evaluation_periods", 1),
    scaleUpPeriodSeconds: period("scale_up_period_seconds"),
    scaleUpAdjustment: num("scale_up_adjustment", 1),
    scaleUpLargeAdjustment: num("scale_up_large_adjustment", 0),
    scaleUpLargeThresholdMultiple: num("scale_up_large_threshold_multiple", 1),
    scaleDownMetric: downMetric === "visible" ? "visible" : "backlog",
    scaleDownThreshold: num("scale_down_threshold", 0),
    scaleDownEvaluationPeriods: num("scale_down_evaluation_periods", 1),
    scaleDownPeriodSeconds: period("scale_down_period_seconds"),
    scaleDownAdjustment: num("scale_down_adjustment", 1),
    scaleUpCooldownSeconds: num("scale_up_cooldown_seconds", 0),
    scaleDownCooldownSeconds: num("scale_down_cooldown_seconds", 0),
    targetBacklogPerInstance: num("target_backlog_per_instance", Number.MIN_VALUE),
    targetTrackingWarmupSeconds: num("target_tracking_warmup_seconds", 0),
    scaleFromZeroBacklogThreshold: num("scale_from_zero_backlog_threshold", 0),
    minSize: num("min_size", 0),
    maxSize: num("max_size", 1),
    instanceWarmupSeconds: num("instance_warmup_seconds", 0),
    lifecycleHookTimeoutSeconds: num("lifecycle_hook_timeout_seconds", 30),
    launchHookTimeoutSeconds: num("launch_hook_timeout_seconds", 0),
    gpuInstanceType: String(value("gpu_instance_type")),
  };
  // terraform's 0 means "no second step": the same adjustment at any breach size.
  if (vars.scaleUpLargeAdjustment === 0) vars.scaleUpLargeAdjustment = vars.scaleUpAdjustment;
  if (vars.launchHookTimeoutSeconds > 0 && vars.launchHookTimeoutSeconds < 30) problems.push(`launch_hook_timeout_seconds: ${vars.launchHookTimeoutSeconds} must be 0 (no hook) or at least 30`);
  if (vars.minSize > vars.maxSize) problems.push(`min_size ${vars.minSize} is above max_size ${vars.maxSize}`);
  for (const [name, n] of [["min_size", vars.minSize], ["max_size", vars.maxSize]] as const) {
    if (!Number.isInteger(n)) problems.push(`${name}: ${n} is not a whole number of instances`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return vars;
}
