/**
 * The Auto Scaling group's instances, minute by minute.
 *
 * - A launched instance is Pending for `bootMinutes` (EC2 boot of a p5 plus model load) and then InService; only
 *   InService instances take jobs. It costs money from launch.
 * - Desired capacity is clamped to [min, max], as the ASG does for every scaling policy.
 * - Scale-in removes Pending instances first (no worker yet, so nothing protects them and nothing is lost).
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

export type InstanceState = "pending" | "in_service" | "leaving" | "draining";
export type ScaleInMode = "cooperative" | "unprotected";

export interface Instance {
  id: number;
  state: InstanceState;
  launchedAt: number;
  readyAt: number;
  /** Leaving or draining: the minute it is gone. */
  goneAt?: number;
}

export interface GroupOptions {
  minSize: number;
  maxSize: number;
  bootMinutes: number;
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
  /** InService and taking jobs. */
  inService: number;
  /** InService, volunteered to leave: no new jobs (cooperative scale-in). */
  leaving: number;
  /** Terminating:Wait after an unprotected scale-in. */
  draining: number;
}

export class AutoScalingGroup {
  private instances: Instance[] = [];
  private nextId = 1;
  private desiredCapacity: number;

  constructor(private readonly options: GroupOptions) {
    this.desiredCapacity = this.clamp(options.initialInService);
    for (let i = 0; i < this.desiredCapacity; i++) {
      this.instances.push({ id: this.nextId++, state: "in_service", launchedAt: -options.bootMinutes, readyAt: 0 });
    }
  }

  get desired(): number {
    return this.desiredCapacity;
  }

  clamp(capacity: number): number {
    return Math.min(this.options.maxSize, Math.max(this.options.minSize, Math.round(capacity)));
  }

  /** Start of minute `k`: booted instances go InService; volunteers and drained instances that are done go. */
  advance(k: number): void {
    for (const instance of this.instances) {
      if (instance.state === "pending" && instance.readyAt <= k) instance.state = "in_service";
    }
    this.instances = this.instances.filter((i) => i.goneAt === undefined || i.goneAt > k);
  }

  counts(): GroupCounts {
    const counts: GroupCounts = { pending: 0, inService: 0, leaving: 0, draining: 0 };
    for (const i of this.instances) {
      if (i.state === "pending") counts.pending++;
      else if (i.state === "in_service") counts.inService++;
      else if (i.state === "leaving") counts.leaving++;
      else counts.draining++;
    }
    return counts;
  }

  /** GroupInServiceInstances as CloudWatch reports it: volunteers are still InService until terminated. */
  inServiceMetric(): number {
    const c = this.counts();
    return c.inService + c.leaving;
  }

  /** Instances billed this minute: every state runs on EC2. */
  billable(): number {
    return this.instances.length;
  }

  /**
   * Current capacity as a step or target-tracking policy sees it: instances that make up desired capacity (not
   * leaving or draining) launched at least `warmupMinutes` before minute `k`. AWS counts an instance once its
   * warmup has passed, whether or not the model has finished loading: it cannot tell.
   */
  warmedUp(k: number, warmupMinutes: number): number {
    return this.capacity().filter((i) => i.launchedAt + warmupMinutes <= k).length;
  }

  /** Instances of the group's capacity launched less than `warmupMinutes` before `k`. */
  warming(k: number, warmupMinutes: number): number {
    return this.capacity().filter((i) => i.launchedAt + warmupMinutes > k).length;
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
    for (let n = counted; n < this.desiredCapacity; n++) {
      this.instances.push({ id: this.nextId++, state: "pending", launchedAt: k, readyAt: k + this.options.bootMinutes });
    }
    this.removeSurplus(k);
    return this.desiredCapacity;
  }

  /** Instances counted in desired capacity: pending and InService, not volunteers or draining ones. */
  private capacity(): Instance[] {
    return this.instances.filter((i) => i.state === "pending" || i.state === "in_service");
  }

  private removeSurplus(k: number): void {
    let surplus = this.capacity().length - this.desiredCapacity;
    if (surplus <= 0) return;
    const pending = this.instances.filter((i) => i.state === "pending").sort(newestFirst).slice(0, surplus);
    this.instances = this.instances.filter((i) => !pending.includes(i));
    surplus -= pending.length;
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
