/**
 * One variable set replayed against one load profile, minute by minute. Order inside minute k:
 *   1. the group advances: instances whose boot finished go InService, drained ones terminate, a surplus held by
 *      scale-in protection starts draining if the workers were idle at the end of the last minute;
 *   2. jobs arrive and InService workers start them at InService × throughput (the queue model);
 *   3. SQS publishes the minute's datapoints (visible, in flight, backlog per instance), sampled at its end;
 *   4. alarms are evaluated on the datapoints they can see (lagged), policies act; changes apply from minute k + 1.
 * In flight ≈ start rate × job duration (Little's law on a busy worker): the messages SQS counts as NotVisible.
 */
import { AutoScalingGroup } from "./auto-scaling-group.ts";
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
  /** Workers protect their instance from scale-in while holding jobs (terraform's workers do). Default true. */
  scaleInProtection?: boolean;
}

export interface MinuteRecord {
  minute: number;
  arrivals: number;
  started: number;
  /** Visible depth at the end of the minute. */
  depth: number;
  inFlight: number;
  oldestAgeSeconds: number;
  meanWaitSeconds: number;
  inService: number;
  pending: number;
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

export function simulate(vars: ScalingVariables, arrivals: readonly number[], options: ModelOptions): SimulationResult {
  const group = new AutoScalingGroup({
    minSize: vars.minSize,
    maxSize: vars.maxSize,
    bootMinutes: Math.ceil(options.bootSeconds / 60),
    drainMinutes: drainMinutes(options.jobSeconds, vars.lifecycleHookTimeoutSeconds),
    initialInService: options.initialInstances ?? vars.minSize,
    scaleInProtection: options.scaleInProtection ?? true,
  });
  const policy = createScalingPolicy(vars, { metricLagMinutes: options.metricLagMinutes });
  const queue = new FluidQueue();
  const metrics: ScalingMetrics = { visible: [], backlog: [], backlogPerInstance: [], backlogWithoutWorkers: [] };
  const minutes: MinuteRecord[] = [];
  const actions: ScalingAction[] = [];
  const perInstancePerMinute = options.throughputJobsPerSecond * 60;

  let workersIdle = true;
  arrivals.forEach((arrived, k) => {
    group.advance(k, workersIdle);
    const counts = group.counts();
    const billed = group.billable();
    const outcome = queue.step(arrived, counts.inService * perInstancePerMinute);
    const inFlight = (outcome.endStartRate * options.jobSeconds) / 60;
    metrics.visible.push(outcome.depth);
    metrics.backlog.push(outcome.depth + inFlight);
    metrics.backlogPerInstance.push(counts.inService > 0 ? (outcome.depth + inFlight) / counts.inService : undefined);
    metrics.backlogWithoutWorkers.push(counts.inService > 0 ? 0 : outcome.depth + inFlight);
    workersIdle = outcome.depth + inFlight < Math.max(1, counts.inService);
    const desiredBefore = group.desired;
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
