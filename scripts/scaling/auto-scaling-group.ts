/**
 * The Auto Scaling group's instances, minute by minute.
 *
 * - Boot in phases: launch → EC2 InService (`ec2InServiceMinutes`, ~2 min) → model ready (`bootMinutes` after
 *   launch: vLLM installed, weights downloaded, engines started). Only ready instances take jobs; every instance
 *   costs money from launch. Without a launch lifecycle hook an instance is InService (counted in
 *   GroupInServiceInstances, its warm-up running) while its model still loads ("loading"). With the hook
 *   (`launchHookTimeoutMinutes` > 0) it stays Pending:Wait until the model is ready and goes InService then; one
 *   whose boot outlasts the hook's timeout is abandoned (terminated) and the ASG launches a replacement.
 * - Warm-up counts from InService, as AWS counts it (not from launch, not from model ready).
 * - Desired capacity is clamped to [min, max], as the ASG does for every scaling policy.
 * - Scale-in removes Pending, then loading instances first (no worker yet: nothing protects them, nothing is lost).
 * - Beyond those, it depends on `scaleIn`:
 *   "cooperative" (worker/scale-in.ts, the default): every worker keeps its instance protected from scale-in, so
 *     lowering desired terminates nothing by itself. Each minute the workers read the group; when InService >
 *     desired, the surplus (InService − desired) instances volunteer: they stop taking jobs, finish what they
 *     hold, then lift their protection and the ASG terminates them (the termination hook finds them idle and
 *     completes in seconds). A volunteer ("leaving") is still InService to AWS — it counts in
 *     GroupInServiceInstances and towards the group's size — and is billed until it goes, `leaveMinutes` after the
 *     decision. If desired rises again before it has gone, the surplus shrinks and volunteers resume work (the
 *     ASG launches nothing while they make up the count).
 *   "unprotected": the ASG terminates the surplus at once, newest first (the AWS default termination policy
 *     balances AZs and prefers the oldest launch template, which this one-AZ, one-template model cannot tell
 *     apart); each drains through the lifecycle hook (Terminating:Wait: no new jobs, billed for `drainMinutes`)
 *     and no longer counts towards the group, as in AWS.
 */

export type InstanceState = "pending" | "loading" | "in_service" | "leaving" | "draining";
export type ScaleInMode = "cooperative" | "unprotected";

export interface Instance {
  id: number;
  state: InstanceState;
  launchedAt: number;
  /** When the ASG puts it InService: warm-up and GroupInServiceInstances count from here. */
  inServiceAt: number;
  /** When its model serves: it takes jobs from here. */
  readyAt: number;
  /** With a launch hook that times out first: when the ASG abandons it. */
  abandonAt?: number;
  /** Leaving or draining: the minute it is gone. */
  goneAt?: number;
}

export interface GroupOptions {
  minSize: number;
  maxSize: number;
  /** Launch to model ready. */
  bootMinutes: number;
  /** Launch to EC2 InService without a launch hook. */
  ec2InServiceMinutes: number;
  /** Launch hook timeout; 0: no launch hook. */
  launchHookTimeoutMinutes: number;
  /** Unprotected scale-in: minutes in Terminating:Wait while the worker drains. */
  drainMinutes: number;
  /** Cooperative scale-in: minutes from the decision until a volunteer has finished its jobs and is gone. */
  leaveMinutes: number;
  /** Instances InService at minute 0 (clamped to [min, max]). */
  initialInService: number;
  scaleIn: ScaleInMode;
}

export interface GroupCounts {
  pending: number;
  /** InService to AWS, model still loading: no jobs (no launch hook only). */
  loading: number;
  /** InService and taking jobs. */
  inService: number;
  /** InService, volunteered to leave: no new jobs (cooperative scale-in). */
  leaving: number;
  /** Terminating:Wait after an unprotected scale-in. */
  draining: number;
}

/** Instances InService at the start: long warmed up. */
const LONG_AGO = -1e6;

export class AutoScalingGroup {
  private instances: Instance[] = [];
  private nextId = 1;
  private desiredCapacity: number;

  constructor(private readonly options: GroupOptions) {
    this.desiredCapacity = this.clamp(options.initialInService);
    for (let i = 0; i < this.desiredCapacity; i++) {
      this.instances.push({ id: this.nextId++, state: "in_service", launchedAt: LONG_AGO, inServiceAt: LONG_AGO, readyAt: LONG_AGO });
    }
  }

  get desired(): number {
    return this.desiredCapacity;
  }

  clamp(capacity: number): number {
    return Math.min(this.options.maxSize, Math.max(this.options.minSize, Math.round(capacity)));
  }

  /**
   * Start of minute `k`: instances move through boot; volunteers and drained instances that are done go; an
   * instance whose launch hook timed out is abandoned and replaced.
   */
  advance(k: number): void {
    const abandoned = this.instances.filter((i) => i.state === "pending" && i.abandonAt !== undefined && i.abandonAt <= k);
    this.instances = this.instances.filter((i) => !abandoned.includes(i) && (i.goneAt === undefined || i.goneAt > k));
    for (const instance of this.instances) {
      if ((instance.state === "pending" || instance.state === "loading") && instance.inServiceAt <= k) {
        instance.state = instance.readyAt <= k ? "in_service" : "loading";
      }
    }
    for (let n = 0; n < abandoned.length; n++) this.launch(k);
  }

  counts(): GroupCounts {
    const counts: GroupCounts = { pending: 0, loading: 0, inService: 0, leaving: 0, draining: 0 };
    for (const i of this.instances) {
      if (i.state === "pending") counts.pending++;
      else if (i.state === "loading") counts.loading++;
      else if (i.state === "in_service") counts.inService++;
      else if (i.state === "leaving") counts.leaving++;
      else counts.draining++;
    }
    return counts;
  }

  /** GroupInServiceInstances as CloudWatch reports it: loading instances and volunteers are InService too. */
  inServiceMetric(): number {
    const c = this.counts();
    return c.loading + c.inService + c.leaving;
  }

  /** Instances billed this minute: every state runs on EC2. */
  billable(): number {
    return this.instances.length;
  }

  /**
   * Current capacity as a step or target-tracking policy sees it: instances that make up desired capacity (not
   * leaving or draining) InService for at least `warmupMinutes` at minute `k`. AWS counts an instance once its
   * warm-up has passed, whether or not the model has finished loading: it cannot tell.
   */
  warmedUp(k: number, warmupMinutes: number): number {
    return this.capacity().filter((i) => i.inServiceAt + warmupMinutes <= k).length;
  }

  /** Instances of the group's capacity still Pending or within their warm-up at `k`. */
  warming(k: number, warmupMinutes: number): number {
    return this.capacity().filter((i) => i.inServiceAt + warmupMinutes > k).length;
  }

  /** Set desired capacity (clamped) from minute `k`; launches, resumes or removes instances to match. */
  setDesired(capacity: number, k: number): number {
    this.desiredCapacity = this.clamp(capacity);
    // Volunteers first: they are still part of the group, and resume work when the surplus shrinks.
    const leaving = this.instances.filter((i) => i.state === "leaving").sort(newestFirst);
    const counted = this.instances.filter((i) => i.state !== "draining").length;
    for (const volunteer of leaving.slice(0, Math.max(0, this.desiredCapacity - this.capacity().length))) {
      volunteer.state = "in_service";
      delete volunteer.goneAt;
    }
    for (let n = counted; n < this.desiredCapacity; n++) this.launch(k);
    this.removeSurplus(k);
    return this.desiredCapacity;
  }

  private launch(k: number): void {
    const { bootMinutes, ec2InServiceMinutes, launchHookTimeoutMinutes: hook } = this.options;
    const instance: Instance = { id: this.nextId++, state: "pending", launchedAt: k, inServiceAt: k + Math.min(ec2InServiceMinutes, bootMinutes), readyAt: k + bootMinutes };
    if (hook > 0) {
      // Pending:Wait until the model is ready, or until the hook times out (default result ABANDON).
      instance.inServiceAt = instance.readyAt;
      if (bootMinutes > hook) instance.abandonAt = k + hook;
    }
    this.instances.push(instance);
  }

  /** Instances counted in desired capacity: pending, loading and InService, not volunteers or draining ones. */
  private capacity(): Instance[] {
    return this.instances.filter((i) => i.state === "pending" || i.state === "loading" || i.state === "in_service");
  }

  private removeSurplus(k: number): void {
    let surplus = this.capacity().length - this.desiredCapacity;
    if (surplus <= 0) return;
    // No worker runs on a pending or loading instance: nothing protects it and nothing is lost.
    const booting = [
      ...this.instances.filter((i) => i.state === "pending").sort(newestFirst),
      ...this.instances.filter((i) => i.state === "loading").sort(newestFirst),
    ].slice(0, surplus);
    this.instances = this.instances.filter((i) => !booting.includes(i));
    surplus -= booting.length;
    const victims = this.instances.filter((i) => i.state === "in_service").sort(newestFirst).slice(0, surplus);
    for (const victim of victims) {
      if (this.options.scaleIn === "cooperative") Object.assign(victim, { state: "leaving", goneAt: k + this.options.leaveMinutes });
      else Object.assign(victim, { state: "draining", goneAt: k + this.options.drainMinutes });
    }
  }
}

function newestFirst(a: Instance, b: Instance): number {
  return b.launchedAt - a.launchedAt || b.id - a.id;
}
