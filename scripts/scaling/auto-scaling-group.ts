/**
 * The Auto Scaling group's instances, minute by minute.
 *
 * - A launched instance is Pending for `bootMinutes` (EC2 boot of a p5 plus model load) and then InService; only
 *   InService instances take jobs. It costs money from launch.
 * - Desired capacity is clamped to [min, max], as the ASG does for every scaling policy.
 * - Scale-in picks Pending instances first (newest first: nothing to drain), then the newest InService ones. The
 *   AWS default termination policy balances AZs and prefers the oldest launch template, which this one-AZ, one-
 *   template model cannot tell apart; newest-first keeps the warm instances, as the fleet would want.
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

  /** Start of minute `k`: booted instances go InService, drained ones terminate. */
  advance(k: number): void {
    for (const instance of this.instances) {
      if (instance.state === "pending" && instance.readyAt <= k) instance.state = "in_service";
    }
    this.instances = this.instances.filter((i) => !(i.state === "draining" && (i.drainUntil ?? 0) <= k));
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

  /** InService instances launched at least `warmupMinutes` before minute `k` (not warming up). */
  warmedUp(k: number, warmupMinutes: number): number {
    return this.instances.filter((i) => i.state === "in_service" && i.launchedAt + warmupMinutes <= k).length;
  }

  /** Instances launched less than `warmupMinutes` before `k` that are still part of the group. */
  warming(k: number, warmupMinutes: number): number {
    return this.instances.filter((i) => i.state !== "draining" && i.launchedAt + warmupMinutes > k).length;
  }

  /** Set desired capacity (clamped) from minute `k`; launches or terminates to match. Returns the clamped value. */
  setDesired(capacity: number, k: number): number {
    this.desiredCapacity = this.clamp(capacity);
    let active = this.instances.filter((i) => i.state !== "draining");
    for (let n = active.length; n < this.desiredCapacity; n++) {
      this.instances.push({ id: this.nextId++, state: "pending", launchedAt: k, readyAt: k + this.options.bootMinutes });
    }
    active = this.instances.filter((i) => i.state !== "draining");
    const surplus = active.length - this.desiredCapacity;
    if (surplus > 0) {
      const victims = [...active].sort(terminationOrder).slice(0, surplus);
      for (const victim of victims) {
        if (victim.state === "pending") this.instances = this.instances.filter((i) => i !== victim);
        else Object.assign(victim, { state: "draining", drainUntil: k + this.options.drainMinutes });
      }
    }
    return this.desiredCapacity;
  }
}

/** Pending before InService, then newest first. */
function terminationOrder(a: Instance, b: Instance): number {
  if (a.state !== b.state) return a.state === "pending" ? -1 : 1;
  return b.launchedAt - a.launchedAt || b.id - a.id;
}
