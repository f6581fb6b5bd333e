/**
 * One variable set replayed against one load profile, minute by minute. Order inside minute k:
 *   1. the group advances: instances move through boot (Pending → InService → model ready), volunteers and
 *      drained instances go;
 *   2. jobs arrive and ready workers (not volunteers) start them at ready × throughput (the queue model);
 *   3. SQS and the ASG publish the minute's datapoints (visible, in flight, InService, desired), sampled at its end
 *      — SQS only while the queue is awake (metric-delay.ts);
 *   4. alarms are evaluated on the datapoints they can see (delayed: metric-delay.ts), policies act; changes apply
 *      from minute k + 1.
 * In flight ≈ start rate × job duration (Little's law on a busy worker): the messages SQS counts as NotVisible.
 */
import { AutoScalingGroup, type ScaleInMode } from "./auto-scaling-group.ts";
import { FluidQueue, type WaitSegment } from "./queue-model.ts";
import type { AlarmState } from "./alarm.ts";
import { MetricFeed, type MetricDelaySpec } from "./metric-delay.ts";
import { createScalingPolicy, type ScalingAction, type ScalingMetrics } from "./scaling-policy.ts";
import type { ScalingVariables } from "./scaling-variables.ts";

export interface ModelOptions {
  /** Jobs per second one InService instance completes (the figure `make bench` measures). */
  throughputJobsPerSecond: number;
  /** Launch to model ready and taking jobs (EC2 boot, vLLM install, weights, engine start), seconds. Rounded up to minutes. */
  bootSeconds: number;
  /** Launch to EC2 InService when there is no launch hook, seconds (default 120). Rounded up to minutes. */
  ec2InServiceSeconds?: number;
  /** Mean time a job is in flight on a worker (receive to delete), seconds. Sets in-flight counts and drain time. */
  jobSeconds: number;
  /** Minutes between the minute a datapoint describes and the alarms seeing it: fixed, or "typical" (seeded draws). */
  metricDelay: MetricDelaySpec;
  /** Seed of the delay draws (default 1): the same seed, the same delays. */
  seed?: number;
  /** Minutes the queue had been idle before minute 0 (default 0); ≥ 360 starts it asleep. */
  idleBeforeMinutes?: number;
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
/** Launch to EC2 InService: boot and status checks of a p5 (assumed). */
export const DEFAULT_EC2_IN_SERVICE_SECONDS = 120;

export interface MinuteRecord {
  minute: number;
  arrivals: number;
  started: number;
  /** Visible depth at the end of the minute. */
  depth: number;
  inFlight: number;
  oldestAgeSeconds: number;
  meanWaitSeconds: number;
  /** Model ready and taking jobs. */
  inService: number;
  pending: number;
  /** InService to AWS, model still loading (no launch hook). */
  loading: number;
  /** InService volunteers finishing their jobs before they go (cooperative scale-in). */
  leaving: number;
  draining: number;
  desired: number;
  /** Instances billed this minute (every state). */
  billed: number;
  /** How many minutes behind the alarms were at the end of the minute. */
  metricLagMinutes: number;
  /** Whether SQS published this minute's datapoints (not while the queue sleeps). */
  sqsPublished: boolean;
  alarms: Record<string, AlarmState>;
}

export interface SimulationResult {
  minutes: MinuteRecord[];
  actions: ScalingAction[];
  /** Queue waits of every job that started, plus lower bounds for those still queued at the end. */
  waits: WaitSegment[];
  jobsQueuedAtEnd: number;
  /** Minutes the queue woke up after sleeping, and how late its first datapoints were. */
  wakeUps: Array<{ minute: number; delayMinutes: number }>;
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
    ec2InServiceMinutes: Math.ceil((options.ec2InServiceSeconds ?? DEFAULT_EC2_IN_SERVICE_SECONDS) / 60),
    launchHookTimeoutMinutes: vars.launchHookTimeoutSeconds > 0 ? Math.max(1, Math.floor(vars.launchHookTimeoutSeconds / 60)) : 0,
    drainMinutes: drainMinutes(options.jobSeconds, vars.lifecycleHookTimeoutSeconds),
    leaveMinutes: leaveMinutes(options.jobSeconds),
    initialInService: options.initialInstances ?? vars.minSize,
    scaleIn: options.scaleIn ?? "cooperative",
  });
  const policy = createScalingPolicy(vars);
  const feed = new MetricFeed({ delay: options.metricDelay, seed: options.seed ?? 1, idleBeforeMinutes: options.idleBeforeMinutes });
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
    // Active: sent to (arrivals), received from (a ready worker polls), or holding messages.
    const active = arrived > 0 || outcome.depth > 1e-9 || inFlight > 1e-9 || counts.inService > 0;
    const published = feed.record(k, active);
    const backlog = outcome.depth + inFlight;
    metrics.visible.push(published ? outcome.depth : undefined);
    metrics.backlog.push(published ? backlog : undefined);
    metrics.backlogPerInstance.push(published && inServiceMetric > 0 ? backlog / inServiceMetric : undefined);
    metrics.backlogAtZeroDesired.push(!published ? undefined : desiredBefore < 1 ? backlog : 0);
    const lag = feed.lagAt(k);
    const step = policy.decide(k, group, metrics, lag);
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
      metricLagMinutes: lag,
      sqsPublished: published,
      alarms: step.alarms,
    });
  });
  return { minutes, actions, waits: [...queue.waits, ...queue.pendingWaits()], jobsQueuedAtEnd: queue.depth(), wakeUps: feed.wakeUps };
}
