/**
 * What one signal per call leaves on the heap while one of its inputs lives on (a worker's stop signal):
 * AbortSignal.any beside CallDeadline (shared/providers/provider.ts), which exists because of the first. Run it on
 * each Node a worker may use:
 *   node --expose-gc --import tsx scripts/abort-signal-retention.ts [--calls 50000] [--rounds 6]
 * Each variant runs in its own process (one's late finalizers would blur the next), `rounds` times `calls` calls,
 * with the heap read after forced collections between rounds. Growth in every round follows the number of calls:
 * a leak. Growth that stops is capacity (tables sized for the largest burst, then reused).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CallDeadline } from "../shared/providers/provider.ts";

const onAbort = () => {};
const VARIANTS: Record<string, (parent: AbortSignal) => void> = {
  "AbortSignal.any": (parent) => {
    // An HTTP client listens for the abort while the request runs, and stops listening when it ends.
    const signal = AbortSignal.any([parent, new AbortController().signal]);
    signal.addEventListener("abort", onAbort);
    signal.removeEventListener("abort", onAbort);
  },
  // The one-liner CallDeadline would be: a timeout signal's timer cannot be cleared when the call ends early.
  "any+timeout": (parent) => {
    const signal = AbortSignal.any([parent, AbortSignal.timeout(60_000)]);
    signal.addEventListener("abort", onAbort);
    signal.removeEventListener("abort", onAbort);
  },
  CallDeadline: (parent) => new CallDeadline(60_000, parent).dispose(),
};

const { values } = parseArgs({
  options: { calls: { type: "string", default: "50000" }, rounds: { type: "string", default: "6" }, variant: { type: "string" } },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc || !Number.isInteger(calls) || calls < 1 || !Number.isInteger(rounds) || rounds < 2) {
  process.stderr.write("usage: node --expose-gc --import tsx scripts/abort-signal-retention.ts [--calls N] [--rounds N>=2]\n");
  process.exit(2);
}

/** Heap after repeated collections, with time between them for WeakRefs to clear and finalizers to run. */
async function settledHeap(): Promise<number> {
  for (let i = 0; i < 10; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return process.memoryUsage().heapUsed;
}

async function measure(name: string, call: (parent: AbortSignal) => void): Promise<string> {
  const parent = new AbortController();
  const start = await settledHeap();
  const growth: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < calls; i++) call(parent.signal);
    growth.push((await settledHeap()) - start);
  }
  if (parent.signal.aborted) throw new Error("unreachable: keeps the parent alive through the measurement");
  const half = Math.floor(rounds / 2);
  const perCall = (growth[rounds - 1]! - growth[half - 1]!) / (calls * (rounds - half));
  const mb = growth.map((g) => (g / 2 ** 20).toFixed(1)).join(" ");
  return `node ${process.version}  ${name.padEnd(15)}  heap MB after each ${calls} calls: ${mb}  -> ${perCall.toFixed(0)} B per call over the second half`;
}

if (values.variant !== undefined) {
  const call = VARIANTS[values.variant];
  if (!call) throw new Error(`unknown variant ${values.variant}`);
  process.stdout.write(`${await measure(values.variant, call)}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  for (const name of Object.keys(VARIANTS)) {
    const args = [...process.execArgv, self, "--calls", String(calls), "--rounds", String(rounds), "--variant", name];
    const run = spawnSync(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
    if (run.status !== 0) process.exitCode = 1;
  }
}
