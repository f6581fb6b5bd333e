/**
 * Scale-in cooperation: the instance is protected from scale-in while it works, so the ASG never picks a worker
 * in the middle of a generation. Protection alone leaves a busy fleet stuck at its size (the ASG lowers desired
 * capacity but may terminate no one), so when the group has more in service than desired, `surplus` workers
 * volunteer: they stop taking work, let what they hold finish, and only then lift their own protection. The ASG
 * then terminates them (its lifecycle hook stops the worker, which exits at once because it is idle).
 *
 * Every worker picks the same volunteers from the same view of the group without talking to the others
 * (`chooseVolunteers`). AWS errors are logged and retried at the next check; they never stop the worker.
 */
import { delay } from "../shared/backoff.ts";
import { coerceError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { Worker } from "./worker.ts";

export interface GroupInstance {
  id: string;
  availabilityZone: string;
}

export interface GroupView {
  desired: number;
  /** Instances in the `InService` lifecycle state (Pending, Standby and Terminating ones are left out). */
  inService: GroupInstance[];
}

/** The two Auto Scaling calls scale-in needs, on this worker's own group and instance. */
export interface AutoScalingPort {
  describeGroup(signal?: AbortSignal): Promise<GroupView>;
  setProtected(protect: boolean, signal?: AbortSignal): Promise<void>;
}

/** What the coordinator uses of the worker. */
export type DrainableWorker = Pick<Worker, "setIntakePaused" | "intakePaused" | "held" | "waitIdle">;

/**
 * working: protected, taking work · draining: a volunteer, intake paused, waiting for its jobs to end ·
 * released: idle and unprotected, waiting for the ASG to terminate it · stopped.
 */
export type ScaleInPhase = "created" | "working" | "draining" | "released" | "stopped";

export interface ScaleInOptions {
  port: AutoScalingPort;
  worker: DrainableWorker;
  instanceId: string;
  checkIntervalMs: number;
  log: Logger;
}

/**
 * The `surplus` instances that should leave, the same for every worker reading the same group. Like the ASG's
 * default termination policy it takes from the zone with the most instances first (so the group stays balanced
 * and AZ rebalancing has nothing to undo), then the highest id in that zone; ties between zones go to the
 * greater zone name. Removing a chosen instance leaves the others chosen, so views taken before and after a
 * volunteer's termination agree.
 */
export function chooseVolunteers(group: GroupView): Set<string> {
  const byZone = new Map<string, string[]>();
  for (const i of group.inService) byZone.set(i.availabilityZone, [...(byZone.get(i.availabilityZone) ?? []), i.id]);
  for (const ids of byZone.values()) ids.sort();
  const chosen = new Set<string>();
  for (let surplus = group.inService.length - group.desired; surplus > 0; surplus--) {
    let zone: string | undefined;
    for (const [z, ids] of byZone) {
      const best = zone === undefined ? undefined : byZone.get(zone)!;
      if (ids.length > 0 && (best === undefined || ids.length > best.length || (ids.length === best.length && z > zone!))) zone = z;
    }
    if (zone === undefined) break;
    chosen.add(byZone.get(zone)!.pop()!);
  }
  return chosen;
}

export class ScaleInCoordinator {
  private state: ScaleInPhase = "created";
  /** What we last set successfully; undefined until the first call succeeds. */
  private protectedNow: boolean | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Whether a draining worker's next wait ends early when it is idle (see run). */
  private wakeOnIdle = true;

  constructor(private readonly o: ScaleInOptions) {}

  get phase(): ScaleInPhase {
    return this.state;
  }

  get isProtected(): boolean | undefined {
    return this.protectedNow;
  }

  /**
   * Protects the instance, then checks the group every `checkIntervalMs`. Await it before the worker takes work.
   * A failed first protection does not block the worker (an AWS outage must not stop the fleet): it is retried
   * at every check until it succeeds.
   */
  async start(): Promise<void> {
    if (this.state !== "created") return;
    this.state = "working";
    await this.protect(true, this.abort.signal);
    this.loop = this.run(this.abort.signal);
  }

  /** Ends the checks; leaves protection and intake as they are (a stopping worker drains on its own). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.state = "stopped";
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const idle = await this.waitNextCheck(signal);
      if (signal.aborted) break;
      // A wake on idle that does not end the drain (an AWS error, say) waits a full interval before the next try:
      // an idle worker would otherwise wake at once, again and again, and hammer a failing API.
      this.wakeOnIdle = !idle;
      try {
        await this.check(idle, signal);
      } catch (err) {
        this.logFailure(err, "scale-in check failed; retrying at the next check");
      }
    }
  }

  /**
   * Waits one interval; a draining worker also wakes as soon as it is idle so its instance goes without delay.
   * Resolves true when the worker became idle.
   */
  private async waitNextCheck(signal: AbortSignal): Promise<boolean> {
    const wait = new AbortController();
    const end = () => wait.abort();
    signal.addEventListener("abort", end, { once: true });
    try {
      const timer = delay(this.o.checkIntervalMs, wait.signal).then(() => false);
      if (this.state !== "draining" || !this.wakeOnIdle) return await timer;
      return await Promise.race([timer, this.o.worker.waitIdle(wait.signal).then(() => !wait.signal.aborted)]);
    } finally {
      wait.abort(); // clears whichever wait lost the race
      signal.removeEventListener("abort", end);
    }
  }

  private async check(idle: boolean, signal: AbortSignal): Promise<void> {
    if (this.protectedNow !== true && (this.state === "working" || this.state === "draining")) await this.protect(true, signal);
    const group = await this.o.port.describeGroup(signal);
    if (!group.inService.some((i) => i.id === this.o.instanceId)) return; // Pending, Standby or terminating: hold
    const volunteer = chooseVolunteers(group).has(this.o.instanceId);
    const context = { desired: group.desired, inService: group.inService.length, held: this.o.worker.held };
    if (this.state === "working" && volunteer) {
      // The next wait ends as soon as the worker is idle; that check re-reads the group before letting go.
      this.o.worker.setIntakePaused(true);
      this.state = "draining";
      this.o.log.info(context, "scale-in: volunteering; intake paused until held jobs finish");
    } else if (this.state === "draining" && !volunteer) {
      this.o.worker.setIntakePaused(false);
      this.state = "working";
      this.o.log.info(context, "scale-in: surplus gone; intake resumed, still protected");
    } else if (this.state === "draining" && idle) {
      if (!(await this.stillIdle())) {
        this.wakeOnIdle = true; // a receive under way delivered work: wake again when that is done
        return;
      }
      // The view is fresh (read just now) and nothing is held: the ASG may take this instance.
      if (await this.protect(false, signal)) {
        this.state = "released";
        this.o.log.info(context, "scale-in: idle; protection lifted for termination");
      }
    } else if (this.state === "released" && (!volunteer || this.o.worker.held > 0)) {
      // Scale-out came back before the ASG acted, or a receive under way at the pause delivered work: protect again.
      if (await this.protect(true, signal)) {
        this.state = volunteer ? "draining" : "working";
        if (!volunteer) this.o.worker.setIntakePaused(false);
        this.o.log.info(context, "scale-in: protection restored");
      }
    }
  }

  /**
   * Idle again one turn later. A receive loop that was waiting for a free slot when the last job ended reserves
   * slots in the same turn that `waitIdle` resolves in (it does not re-check the pause); by the next turn those
   * slots count. Then `waitIdle` resolves at once when idle; otherwise `setImmediate` answers first.
   */
  private async stillIdle(): Promise<boolean> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const probe = new AbortController();
    try {
      return await Promise.race([
        this.o.worker.waitIdle(probe.signal).then(() => !probe.signal.aborted),
        new Promise<boolean>((resolve) => setImmediate(() => resolve(false))),
      ]);
    } finally {
      probe.abort();
    }
  }

  /** Never throws: a failure is logged and the next check retries. */
  private async protect(protect: boolean, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.o.port.setProtected(protect, signal);
      this.protectedNow = protect;
      return true;
    } catch (err) {
      this.logFailure(err, protect ? "scale-in protection failed; retrying at the next check" : "lifting scale-in protection failed; retrying at the next check");
      return false;
    }
  }

  private logFailure(thrown: unknown, message: string): void {
    this.o.log.warn({ err: coerceError(thrown) }, message);
  }
}
