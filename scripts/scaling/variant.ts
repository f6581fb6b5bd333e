/**
 * A variant: one named variable set, simulated and summarised. Several variants over the same load profile are
 * what the report puts side by side.
 */
import { simulate, type ModelOptions, type SimulationResult } from "./simulation.ts";
import { summarize, type Summary, type SummaryOptions } from "./summary.ts";
import type { ScalingVariables } from "./scaling-variables.ts";

export interface VariantRun {
  name: string;
  variables: ScalingVariables;
  pricePerHour: number;
  result: SimulationResult;
  summary: Summary;
}

export function runVariant(
  name: string,
  variables: ScalingVariables,
  arrivals: readonly number[],
  model: ModelOptions,
  summaryOptions: SummaryOptions,
): VariantRun {
  const result = simulate(variables, arrivals, model);
  return { name, variables, pricePerHour: summaryOptions.pricePerHour, result, summary: summarize(result, summaryOptions) };
}

/** One line describing how a variant scales, for tables and chart legends. */
export function describePolicy(v: ScalingVariables): string {
  const size = `${v.minSize}–${v.maxSize} × ${v.gpuInstanceType}`;
  if (v.scalingMode === "target_tracking") {
    return `target tracking: backlog/instance ${v.targetBacklogPerInstance}, warmup ${v.targetTrackingWarmupSeconds} s; ${size}`;
  }
  const large = v.scaleUpLargeAdjustment !== v.scaleUpAdjustment ? ` (+${v.scaleUpLargeAdjustment} at ×${v.scaleUpLargeThresholdMultiple})` : "";
  return (
    `step: visible > ${v.scaleUpThreshold} for ${v.scaleUpEvaluationPeriods}×${v.scaleUpPeriodSeconds} s → +${v.scaleUpAdjustment}${large}, ` +
    `warmup ${v.scaleUpCooldownSeconds} s; ${v.scaleDownMetric === "backlog" ? "visible + in flight" : "visible"} < ${v.scaleDownThreshold} for ${v.scaleDownEvaluationPeriods}×${v.scaleDownPeriodSeconds} s → ` +
    `−${v.scaleDownAdjustment}, cooldown ${v.scaleDownCooldownSeconds} s; ${size}`
  );
}
