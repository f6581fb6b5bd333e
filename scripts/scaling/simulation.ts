/**
 * One variable set replayed against one load profile, minute by minute. Order inside minute k:
 *   1. the group advances: instances whose boot finished go InService, volunteers and drained instances go;
 *   2. jobs arrive and InService workers (not volunteers) start them at InService × throughput (the queue model);
 *   3. SQS and the ASG publish the minute's datapoints (visible, in flight, InService, desired), sampled at its end;
 *   4. alarms are evaluated on the datapoints they can see (lagged), policies act; changes apply from minute k + 1.
 * In flight ≈ start rate × job duration (Little's law on a busy worker): the messages SQS counts as NotVisible.
 */
import { AutoScalingGroup, type ScaleInMode } from "./auto-scaling-group.ts";
import { FluidQueue, type WaitSegment } from "./queue-model.ts";
import type { AlarmState } from "./alarm.ts";
import { createScalingPolicy, type ScalingAction, type ScalingMetrics } from "./scaling-policy.ts";
import type { ScalingVariables } from "./scaling-variables.ts";

export interface ModelOptions {
  /** Jobs per second one InService instance completes (the figure `make bench` measures). */
  throughputJobsPerSecond: number;
  /** Launch to InService and taking jobs (p5 boot + model load), seconds. Rounded up to whole minutes. */
  bootSeconds: number;
  /** Mean time a job is in flight on a worker (receive to delete), seconds. Sets in-flight counts and drain time. */
  jobSeconds: number;
  /** Minutes between the minute a datapoint describes and the alarm seeing it. */
  metricLagMinutes: number;
  /** Instances InService at minute 0 (default min_size). */
  initialInstances?: number;
  /**
   * "cooperative" (default, what worker/scale-in.ts does): workers keep their instance scale-in protected and the
   * surplus volunteers, finishes its jobs and leaves. "unprotected": the ASG terminates the surplus at once and it
   * drains through the lifecycle hook.
   */
  scaleIn?: ScaleInMode;
}

/** How often a worker reads the group to see whether it should volunteer (worker/scale-in.ts: every minute). */
export const SCALE_IN_CHECK_SECONDS = 60;

export interface MinuteRecord {
  minute: number;
  arrivals: number;
  started: number;
  /** Visible depth at the end of the minute. */
  depth: number;
  inFlight: number;
  oldestAgeSeconds: number;
  meanWaitSeconds: number;
  /** InService and taking jobs. */
  inService: number;
  pending: number;
  /** InService volunteers finishing their jobs before they go (cooperative scale-in). */
  leaving: number;
  draining: number;
  desired: number;
  /** Instances billed this minute (Pending + InService + draining). */
  billed: number;
  alarms: Record<string, AlarmState>;
}

export interface SimulationResult {
  minutes: MinuteRecord[];
  actions: ScalingAction[];
  /** Queue waits of every job that started, plus lower bounds for those still queued at the end. */
  waits: WaitSegment[];
  jobsQueuedAtEnd: number;
}

/** Whole minutes an instance stays draining: its in-flight jobs finish, capped by the lifecycle-hook timeout. */
export function drainMinutes(jobSeconds: number, lifecycleHookTimeoutSeconds: number): number {
  return Math.max(1, Math.ceil(Math.min(jobSeconds, lifecycleHookTimeoutSeconds) / 60));
}

/**
 * Whole minutes a volunteer is billed after the decision: up to one check interval before its worker notices, then
 * its in-flight jobs (not capped: it is still protected, so no hook timeout runs), then seconds of idle drain.
 * It stops taking jobs from the first of those minutes: the capacity it would still give until its check is left
 * out, a slight pessimism that only applies while the fleet has more workers than it needs.
 */
export function leaveMinutes(jobSeconds: number): number {
  return Math.max(1, Math.ceil((SCALE_IN_CHECK_SECONDS + jobSeconds) / 60));
}

export function simulate(vars: ScalingVariables, arrivals: readonly number[], options: ModelOptions): SimulationResult {
  const group = new AutoScalingGroup({
    minSize: vars.minSize,
    maxSize: vars.maxSize,
    bootMinutes: Math.ceil(options.bootSeconds / 60),
    drainMinutes: drainMinutes(options.jobSeconds, vars.lifecycleHookTimeoutSeconds),
    leaveMinutes: leaveMinutes(options.jobSeconds),
    initialInService: options.initialInstances ?? vars.minSize,
    scaleIn: options.scaleIn ?? "cooperative",
  });
  const policy = createScalingPolicy(vars, { metricLagMinutes: options.metricLagMinutes });
  const queue = new FluidQueue();
  const metrics: ScalingMetrics = { visible: [], backlog: [], backlogPerInstance: [], backlogAtZeroDesired: [] };
  const minutes: MinuteRecord[] = [];
  const actions: ScalingAction[] = [];
  const perInstancePerMinute = options.throughputJobsPerSecond * 60;

  arrivals.forEach((arrived, k) => {
    group.advance(k);
    const counts = group.counts();
    const inServiceMetric = group.inServiceMetric();
    const desiredBefore = group.desired;
    const billed = group.billable();
    const outcome = queue.step(arrived, counts.inService * perInstancePerMinute);
    const inFlight = (outcome.endStartRate * options.jobSeconds) / 60;
    metrics.visible.push(outcome.depth);
    metrics.backlog.push(outcome.depth + inFlight);
    metrics.backlogPerInstance.push(inServiceMetric > 0 ? (outcome.depth + inFlight) / inServiceMetric : undefined);
    metrics.backlogAtZeroDesired.push(desiredBefore < 1 ? outcome.depth + inFlight : 0);
    const step = policy.decide(k, group, metrics);
    if (step.action) actions.push(step.action);
    minutes.push({
      minute: k,
      arrivals: arrived,
      started: outcome.started,
      depth: outcome.depth,
      inFlight,
      oldestAgeSeconds: outcome.oldestAgeMinutes * 60,
      meanWaitSeconds: outcome.meanWaitMinutes * 60,
      ...counts,
      desired: desiredBefore,
      billed,
      alarms: step.alarms,
    });
  });
  return { minutes, actions, waits: [...queue.waits, ...queue.pendingWaits()], jobsQueuedAtEnd: queue.depth() };
}
