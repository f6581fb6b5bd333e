/**
 * Keeps a fleet of worker processes at size: any worker that exits while supervised is replaced, as a process
 * manager (systemd, ECS) would. Exits the suite asked for (kill -9, SIGTERM drain) are told apart from the ones it
 * did not (a job that crashes its worker), which are counted.
 */
import type { WorkerProcess } from "./worker-process.ts";

type Exit = Awaited<WorkerProcess["exited"]>;

export class WorkerFleet {
  private readonly live = new Set<WorkerProcess>();
  /** Resolves with the ready replacement of a worker once it exited (undefined after stop()). */
  private readonly replacements = new Map<WorkerProcess, Promise<WorkerProcess | undefined>>();
  private readonly requested = new Set<WorkerProcess>();
  private supervising = true;
  private spawned = 0;
  /** Workers that exited without being asked to (and were replaced). */
  crashes = 0;

  constructor(
    private readonly spawn: (name: string) => WorkerProcess,
    private readonly log: (line: string) => void,
  ) {}

  get size(): number {
    return this.live.size;
  }

  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.launch().ready));
  }

  /** Sends `signal` to a random live worker; resolves with its exit once its replacement is ready. */
  async signalOne(signal: NodeJS.Signals, pick: (n: number) => number = (n) => Math.floor(Math.random() * n)): Promise<{ name: string; exit: Exit }> {
    const victim = [...this.live][pick(this.live.size)];
    if (victim === undefined) throw new Error("no live worker to signal");
    this.requested.add(victim);
    victim.kill(signal);
    const exit = await victim.exited;
    await this.replacements.get(victim);
    return { name: victim.name, exit };
  }

  /** Stops replacing, SIGTERMs every live worker and waits for all of them. */
  async stop(): Promise<void> {
    this.supervising = false;
    const all = [...this.live];
    all.forEach((w) => w.kill("SIGTERM"));
    await Promise.all(all.map((w) => w.exited));
  }

  private launch(): WorkerProcess {
    const w = this.spawn(`worker-${++this.spawned}`);
    this.live.add(w);
    this.replacements.set(w, w.exited.then((exit) => this.replace(w, exit)));
    return w;
  }

  private async replace(w: WorkerProcess, exit: Exit): Promise<WorkerProcess | undefined> {
    this.live.delete(w);
    if (!this.supervising) return undefined;
    if (!this.requested.has(w)) {
      this.crashes += 1;
      this.log(`${w.name} died unasked (code ${exit.code}, signal ${exit.signal}); replacing it`);
    }
    const next = this.launch();
    // A replacement that dies before it is ready is replaced in turn: follow the chain to a ready one.
    return next.ready.then(
      () => next,
      () => this.replacements.get(next),
    );
  }
}
