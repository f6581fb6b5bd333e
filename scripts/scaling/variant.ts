/**
 * A variant: one named variable set, simulated and summarised at the configured inputs, swept over the
 * sensitivity grid, and checked for warm-ups shorter than boot. Several variants over the same load profile are
 * what the report puts side by side.
 */
import type { HourlyPrice } from "./instance-pricing.ts";
import { TT_HIGH_PERIODS, TT_LOW_PERIODS } from "./scaling-policy.ts";
import { sweep, type Sensitivity, type SweepGrid } from "./sensitivity.ts";
import { simulate, type ModelOptions, type SimulationResult } from "./simulation.ts";
import { summarize, type Summary } from "./summary.ts";
import type { ScalingVariables } from "./scaling-variables.ts";
import { warmupWarnings } from "./warmup-warnings.ts";

export interface VariantRun {
  name: string;
  variables: ScalingVariables;
  price: HourlyPrice;
  result: SimulationResult;
  summary: Summary;
  sensitivity: Sensitivity;
  warnings: string[];
}

export interface VariantOptions {
  slaSeconds: number;
  price: HourlyPrice;
  grid?: SweepGrid;
}

export function runVariant(name: string, variables: ScalingVariables, arrivals: readonly number[], model: ModelOptions, options: VariantOptions): VariantRun {
  const summaryOptions = { slaSeconds: options.slaSeconds, pricePerHour: options.price.usdPerHour };
  const result = simulate(variables, arrivals, model);
  return {
    name,
    variables,
    price: options.price,
    result,
    summary: summarize(result, summaryOptions),
    sensitivity: sweep(variables, arrivals, model, summaryOptions, options.grid),
    warnings: warmupWarnings(variables, model),
  };
}

/** One line describing how a variant scales, for tables and chart legends. */
export function describePolicy(v: ScalingVariables): string {
  const hook = v.launchHookTimeoutSeconds > 0 ? `launch hook (InService when vLLM is ready, ≤ ${v.launchHookTimeoutSeconds} s)` : "no launch hook";
  const size = `${v.minSize}–${v.maxSize} × ${v.gpuInstanceType}, ${hook}`;
  if (v.scalingMode === "target_tracking") {
    return (
      `target tracking: backlog/instance ${v.targetBacklogPerInstance}, warmup ${v.targetTrackingWarmupSeconds} s, ` +
      `alarms ${TT_HIGH_PERIODS}×1 min / ${TT_LOW_PERIODS}×1 min (assumed); ${size}`
    );
  }
  const large = v.scaleUpLargeAdjustment !== v.scaleUpAdjustment ? ` (+${v.scaleUpLargeAdjustment} at ×${v.scaleUpLargeThresholdMultiple})` : "";
  return (
    `step: visible > ${v.scaleUpThreshold} for ${v.scaleUpEvaluationPeriods}×${v.scaleUpPeriodSeconds} s → +${v.scaleUpAdjustment}${large}, ` +
    `warmup ${v.scaleUpCooldownSeconds} s; ${v.scaleDownMetric === "backlog" ? "visible + in flight" : "visible"} < ${v.scaleDownThreshold} for ${v.scaleDownEvaluationPeriods}×${v.scaleDownPeriodSeconds} s → ` +
    `−${v.scaleDownAdjustment}, cooldown ${v.scaleDownCooldownSeconds} s; ${size}`
  );
}
