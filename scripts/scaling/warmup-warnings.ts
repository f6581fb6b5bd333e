/**
 * Warnings about a variable set against the boot it will meet. AWS counts a policy's instance warm-up from
 * InService. Without a launch hook an instance is InService about two minutes after launch and serves only once
 * vLLM is ready: a warm-up shorter than that gap lets the policy count, as current capacity, an instance that
 * takes no jobs yet — it under-provisions until the model is up. With the launch hook (InService = ready) the gap
 * is zero; the hook's own timeout must then outlast the boot, or every launch is abandoned.
 */
import { DEFAULT_EC2_IN_SERVICE_SECONDS, type ModelOptions } from "./simulation.ts";
import type { ScalingVariables } from "./scaling-variables.ts";

/** Seconds from InService until the instance takes jobs. */
export function servingGapSeconds(vars: ScalingVariables, model: Pick<ModelOptions, "bootSeconds" | "ec2InServiceSeconds">): number {
  if (vars.launchHookTimeoutSeconds > 0) return 0;
  const boot = Math.ceil(model.bootSeconds / 60) * 60;
  const inService = Math.ceil((model.ec2InServiceSeconds ?? DEFAULT_EC2_IN_SERVICE_SECONDS) / 60) * 60;
  return Math.max(0, boot - inService);
}

export function warmupWarnings(vars: ScalingVariables, model: Pick<ModelOptions, "bootSeconds" | "ec2InServiceSeconds">): string[] {
  const warnings: string[] = [];
  const bootMinutes = Math.ceil(model.bootSeconds / 60);
  if (vars.launchHookTimeoutSeconds > 0 && model.bootSeconds > vars.launchHookTimeoutSeconds) {
    warnings.push(
      `boot (${bootMinutes} min) outlasts launch_hook_timeout_seconds (${vars.launchHookTimeoutSeconds} s): every launch is abandoned before its model is ready`,
    );
  }
  const gap = servingGapSeconds(vars, model);
  if (gap === 0) return warnings;
  const warmups: Array<[string, number]> = [];
  if (vars.scalingMode === "step") warmups.push(["scale_up_cooldown_seconds (the step policy's warm-up)", vars.scaleUpCooldownSeconds]);
  else warmups.push(["target_tracking_warmup_seconds", vars.targetTrackingWarmupSeconds]);
  if (vars.minSize === 0) warmups.push(["instance_warmup_seconds (the scale-from-zero policy's warm-up)", vars.instanceWarmupSeconds]);
  for (const [name, seconds] of warmups) {
    if (seconds >= gap) continue;
    warnings.push(
      `${name} ${seconds} s is shorter than boot: with no launch hook AWS counts the warm-up from InService, ` +
        `${bootMinutes * 60 - gap} s after launch, and vLLM serves ${gap} s later; for ${gap - seconds} s the policy counts an ` +
        `instance that takes no jobs (set launch_hook_timeout_seconds, or this to ≥ ${gap})`,
    );
  }
  return warnings;
}
