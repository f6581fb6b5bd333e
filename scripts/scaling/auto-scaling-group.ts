/**
 * The Auto Scaling group's instances, minute by minute.
 *
 * - A launched instance is Pending for `bootMinutes` (EC2 boot of a p5 plus model load) and then InService; only
 *   InService instances take jobs. It costs money from launch.
 * - Desired capacity is clamped to [min, max], as the ASG does for every scaling policy.
 * - Scale-in picks Pending instances first (newest first: nothing to drain), then the newest InService ones. The
 *   AWS default termination policy balances AZs and prefers the oldest launch template, which this one-AZ, one-
 *   template model cannot tell apart; newest-first keeps the warm instances, as the fleet would want.
 * - Scale-in protection (terraform's workers set it on their own instance while they hold jobs): when desired
 *   drops below the instances running, the surplus InService instances keep running — and keep taking jobs — until
 *   the workers are idle; AWS decrements desired and terminates once protection is lifted. A worker counts as idle
 *   when the fleet holds less than one job per InService instance (jobs spread over all pollers, so under any real
 *   load every worker holds some). Pending instances have no worker yet and go at once.
 * - A terminated InService instance goes to Terminating:Wait: the worker stops receiving, finishes its in-flight
 *   jobs and completes the lifecycle action, or the hook times out. It takes no new jobs but is billed for
 *   `drainMinutes`. It no longer counts towards desired capacity (as in AWS).
 */

export type InstanceState = "pending" | "in_service" | "draining";

export interface Instance {
  id: number;
  state: InstanceState;
  launchedAt: number;
  readyAt: number;
  drainUntil?: number;
}

export interface GroupOptions {
  minSize: number;
  maxSize: number;
  bootMinutes: number;
  drainMinutes: number;
  /** Instances InService at minute 0 (clamped to [min, max]). */
  initialInService: number;
  /** Workers protect their instance from scale-in while they hold jobs. */
  scaleInProtection: boolean;
}

export interface GroupCounts {
  pending: number;
  inService: number;
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

  /**
   * Start of minute `k`: booted instances go InService, drained ones terminate, and a surplus held by scale-in
   * protection starts draining once `workersIdle`.
   */
  advance(k: number, workersIdle: boolean): void {
    for (const instance of this.instances) {
      if (instance.state === "pending" && instance.readyAt <= k) instance.state = "in_service";
    }
    this.instances = this.instances.filter((i) => !(i.state === "draining" && (i.drainUntil ?? 0) <= k));
    if (workersIdle) this.terminateSurplus(k, true);
  }

  counts(): GroupCounts {
    const counts: GroupCounts = { pending: 0, inService: 0, draining: 0 };
    for (const i of this.instances) {
      if (i.state === "pending") counts.pending++;
      else if (i.state === "in_service") counts.inService++;
      else counts.draining++;
    }
    return counts;
  }

  /** Instances billed this minute: Pending, InService and draining all run on EC2. */
  billable(): number {
    return this.instances.length;
  }

  /**
   * Current capacity as a step or target-tracking policy sees it: instances (not draining) launched at least
   * `warmupMinutes` before minute `k`. AWS counts an instance once its warmup has passed, whether or not the
   * model has finished loading: it cannot tell.
   */
  warmedUp(k: number, warmupMinutes: number): number {
    return this.instances.filter((i) => i.state !== "draining" && i.launchedAt + warmupMinutes <= k).length;
  }

  /** Instances launched less than `warmupMinutes` before `k` that are still part of the group. */
  warming(k: number, warmupMinutes: number): number {
    return this.instances.filter((i) => i.state !== "draining" && i.launchedAt + warmupMinutes > k).length;
  }

  /** Set desired capacity (clamped) from minute `k`; launches or terminates to match. Returns the clamped value. */
  setDesired(capacity: number, k: number): number {
    this.desiredCapacity = this.clamp(capacity);
    const active = this.instances.filter((i) => i.state !== "draining").length;
    for (let n = active; n < this.desiredCapacity; n++) {
      this.instances.push({ id: this.nextId++, state: "pending", launchedAt: k, readyAt: k + this.options.bootMinutes });
    }
    this.terminateSurplus(k, !this.options.scaleInProtection);
    return this.desiredCapacity;
  }

  /** Instances beyond desired: pending ones go at once; InService ones drain when not protected. */
  private terminateSurplus(k: number, includeInService: boolean): void {
    const active = this.instances.filter((i) => i.state !== "draining");
    const surplus = active.length - this.desiredCapacity;
    if (surplus <= 0) return;
    const victims = active
      .filter((i) => includeInService || i.state === "pending")
      .sort(terminationOrder)
      .slice(0, surplus);
    for (const victim of victims) {
      if (victim.state === "pending") this.instances = this.instances.filter((i) => i !== victim);
      else Object.assign(victim, { state: "draining", drainUntil: k + this.options.drainMinutes });
    }
  }
}

/** Pending before InService, then newest first. */
function terminationOrder(a: Instance, b: Instance): number {
  if (a.state !== b.state) return a.state === "pending" ? -1 : 1;
  return b.launchedAt - a.launchedAt || b.id - a.id;
}
