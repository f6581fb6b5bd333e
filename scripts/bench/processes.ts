/** Child processes for the benchmark: the simulator as its own process (like vLLM), and /proc readings. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { delay } from "../../shared/backoff.ts";
import { VllmClient } from "../../shared/providers/vllm.ts";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "../..");
const TICKS_PER_SECOND = 100; // Linux USER_HZ

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export interface SimProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `make sim` as a child process with the given flags; resolves once /health answers. */
export async function startSimProcess(flags: string[]): Promise<SimProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", resolve(ROOT, "scripts/simulators/vllm/main.ts"), "--port", String(port), ...flags], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = new VllmClient({ baseUrl: url, model: "x", timeoutMs: 1000 });
  try {
    for (let i = 0; !(await probe.health()); i += 1) {
      if (i > 200 || child.exitCode !== null) throw new Error("simulator did not start");
      await delay(50);
    }
  } finally {
    await probe.close();
  }
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return { url, child, stop: async () => void (child.kill("SIGTERM"), await exited) };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident set size in MiB. */
export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.replace(/\D+/g, "")) / 1024;
}
