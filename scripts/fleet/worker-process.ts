/**
 * Runs `worker/main.ts` as a real child process (the same entry point production uses), with its logs in a file.
 * `ready` resolves when the worker reports over IPC that it started (with its id and ops server URL); `exited` with
 * its exit code or signal.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");

/** The worker's ready message (worker/main.ts). */
export interface WorkerReady {
  workerId: string;
  /** Where its ops server answers (/health, /metrics), when OPS_PORT is set. */
  opsUrl?: string;
}

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  ready: Promise<WorkerReady>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/** `source` runs worker/main.ts through tsx; `dist` runs the production bundle (make build). */
export type WorkerEntry = "source" | "dist";

/** The fault suite's test hooks (worker-harness.ts), for `imports`. */
export const WORKER_HARNESS = resolve(ROOT, "scripts/fleet/worker-harness.ts");

/** `imports`: modules loaded before the worker, after tsx (source entry only), e.g. WORKER_HARNESS. */
export function spawnWorker(name: string, env: Record<string, string>, logDir: string, nodeFlags: string[] = [], entry: WorkerEntry = "source", imports: string[] = []): WorkerProcess {
  if (entry === "dist" && imports.length > 0) throw new TypeError("preloaded modules need the source entry: the bundle has its own copies");
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(resolve(logDir, `${name}.log`), { flags: "a" });
  const preload = imports.flatMap((m) => ["--import", m]);
  const args = entry === "dist" ? [resolve(ROOT, "dist/worker.mjs")] : ["--import", "tsx", ...preload, resolve(ROOT, "worker/main.ts")];
  const child = spawn(process.execPath, [...nodeFlags, "--enable-source-maps", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...passThrough(), ...env },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once("exit", (code, signal) => res({ code, signal })),
  );
  const ready = new Promise<WorkerReady>((res, rej) => {
    const lines = createInterface({ input: child.stderr! });
    lines.on("line", (line) => log.write(`${line}\n`));
    child.on("message", (m: { type?: string; workerId?: string; opsUrl?: string }) => {
      if (m?.type === "ready") res({ workerId: String(m.workerId), ...(typeof m.opsUrl === "string" ? { opsUrl: m.opsUrl } : {}) });
    });
    lines.once("close", () => log.end());
    void exited.then(({ code, signal }) => rej(new Error(`worker ${name} exited before it was ready (code ${code}, signal ${signal}); see ${logDir}/${name}.log`)));
  });
  ready.catch(() => undefined);
  return { name, child, ready, exited, kill: (signal) => void child.kill(signal) };
}

/** The few supervisor variables a worker inherits; everything else it gets is explicit. */
function passThrough(): Record<string, string> {
  const names = ["NODE_OPTIONS", "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"];
  return Object.fromEntries(names.flatMap((n) => (process.env[n] === undefined ? [] : [[n, process.env[n]!]])));
}
