/**
 * Runs the Results API (producer/api/main.ts) as a child process, the entry point production uses, with its logs
 * in a file. `ready` resolves with its base URL once it reports over IPC that it listens.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");

export interface ApiProcess {
  child: ChildProcess;
  /** The API's base URL, e.g. http://127.0.0.1:8080. */
  ready: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnApi(env: Record<string, string>, logDir: string): ApiProcess {
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(resolve(logDir, "api.log"), { flags: "a" });
  const child = spawn(process.execPath, ["--enable-source-maps", "--import", "tsx", resolve(ROOT, "producer/api/main.ts")], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...inherited(), ...env },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once("exit", (code, signal) => res({ code, signal })));
  const lines = createInterface({ input: child.stderr! });
  lines.on("line", (line) => log.write(`${line}\n`));
  lines.once("close", () => log.end());
  const ready = new Promise<string>((res, rej) => {
    child.on("message", (m: { type?: string; address?: string }) => {
      if (m?.type === "ready" && m.address !== undefined) res(m.address);
    });
    void exited.then(({ code, signal }) => rej(new Error(`the API exited before it was ready (code ${code}, signal ${signal}); see ${logDir}/api.log`)));
  });
  ready.catch(() => undefined);
  return { child, ready, exited };
}

function inherited(): Record<string, string> {
  const names = ["NODE_OPTIONS", "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"];
  return Object.fromEntries(names.flatMap((n) => (process.env[n] === undefined ? [] : [[n, process.env[n]!]])));
}
