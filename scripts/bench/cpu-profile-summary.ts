/**
 * Summarises a V8 `.cpuprofile` (node --cpu-prof): self time by where the code lives (a package under
 * node_modules, our own code, node's internals, GC, idle) and the heaviest functions. For the closing note's
 * "top frames before and after" of a bench run:
 *   node --import tsx scripts/bench.ts --only overhead "--worker-node-flags=--cpu-prof --cpu-prof-dir=out/prof"
 *   node --import tsx scripts/bench/cpu-profile-summary.ts out/prof/<file>.cpuprofile [top]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: the package, "ours", "node", or V8's pseudo-frames. */
export function placeOf(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "native";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return "node";
  return "ours";
}

export function summarise(profile: Profile, top = 15): { places: [string, number][]; functions: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const places = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const place = placeOf(url, functionName);
    places.set(place, (places.get(place) ?? 0) + us);
    const file = url.split("/").slice(-1)[0] ?? "";
    const name = `${functionName || "(anonymous)"} ${place === "ours" || place === "node" ? `${file}:${lineNumber + 1}` : place}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const share = (m: Map<string, number>) => [...m].map(([k, v]) => [k, v / total] as [string, number]).sort((a, b) => b[1] - a[1]).slice(0, top);
  return { places: share(places), functions: share(functions) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top] = process.argv.slice(2);
  if (file === undefined) throw new Error("usage: cpu-profile-summary.ts <file.cpuprofile> [top]");
  const { places, functions } = summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(top ?? 15));
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  process.stdout.write("self time by place\n");
  for (const [k, v] of places) process.stdout.write(`  ${pct(v)}  ${k}\n`);
  process.stdout.write("heaviest functions (self time)\n");
  for (const [k, v] of functions) process.stdout.write(`  ${pct(v)}  ${k}\n`);
}
