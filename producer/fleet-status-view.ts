/**
 * The text form of `fleet status`, and the loop that redraws it in place on a terminal (ANSI: cursor home, each line
 * cleared to its end, the rest of the screen cleared) until the signal aborts (Ctrl-C).
 */
import { delay } from "../shared/backoff.ts";
import type { FleetStatus } from "./fleet-status.ts";

export function renderFleetStatus(f: FleetStatus): string {
  const lines: string[] = [`fleet status at ${f.at}`, ""];
  lines.push(
    ...table([
      ["QUEUE", "visible", "in flight", "delayed", "oldest wait", "DLQ"],
      ...f.queues.map((q) =>
        q.error !== undefined
          ? [q.name, "-", "-", "-", "-", "-"] // named under UNREACHABLE
          : [q.name, n(q.visible), n(q.inFlight), n(q.delayed), q.oldestWaitMs === null ? "-" : duration(q.oldestWaitMs), q.dlq === null ? "none" : n(q.dlq.visible + q.dlq.inFlight)],
      ),
    ]),
    "",
  );
  lines.push(`WORKERS ${f.workers.length} live${f.goneWorkers > 0 ? `, ${f.goneWorkers} gone (unseen for 3 intervals)` : ""}`);
  if (f.workers.length > 0) {
    lines.push(
      ...table([
        ["id", "state", "held", "in flight", "limit", "done", "up", "seen"],
        ...f.workers.map((w) => [w.id, w.state + (w.intakePaused ? " (paused)" : "") + (w.storeWritesHealthy ? "" : " (store!)"), n(w.held), n(w.inFlight), n(w.limit), n(w.done), duration(w.uptimeS * 1000), `${duration(w.seenAgoMs)} ago`]),
      ]),
    );
  }
  lines.push("");
  const m = f.lastMinute;
  lines.push(
    m === null
      ? "LAST MINUTE unknown (store unreachable)"
      : `LAST MINUTE ${m.finished} finished (${m.perSecond}/s): ${m.succeeded} succeeded, ${m.failed} failed, ${m.dead} dead, ${m.expired} expired; latency p50 ${ms(m.p50Ms)}, p95 ${ms(m.p95Ms)}`,
    "",
  );
  lines.push("PROVIDERS");
  lines.push(
    ...(f.providers.length === 0
      ? ["  (no live worker reports any)"]
      : table(f.providers.map((p) => [p.name, Object.entries(p.breakers).map(([state, k]) => `${state} ${k}`).join(", "), `in flight ${p.inFlight}/${p.maxInFlight}`, p.lastErrorCodes.length === 0 ? "" : `last error ${p.lastErrorCodes.join(", ")}`]))),
    "",
  );
  lines.push(
    f.cost === null
      ? "COST unknown (store unreachable)"
      : `COST since ${f.cost.since}: $${f.cost.totalUsd.toFixed(6)}${Object.keys(f.cost.byProvider).length > 0 ? ` (${Object.entries(f.cost.byProvider).map(([p, usd]) => `${p} $${usd.toFixed(6)}`).join(", ")})` : ""}`,
  );
  if (f.errors.length > 0) lines.push("", `UNREACHABLE ${f.errors.map((e) => `${e.section}: ${e.code}`).join("; ")}`);
  return `${lines.join("\n")}\n`;
}

/** Redraws `render()` every `everyMs` until `signal` aborts; a frame still being gathered then is dropped. */
export async function watch(render: () => Promise<string>, out: NodeJS.WritableStream, signal: AbortSignal, everyMs = 2_000): Promise<void> {
  const stopped = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
  out.write("\x1b[?25l\x1b[2J");
  try {
    while (!signal.aborted) {
      const frame = await Promise.race([render(), stopped]);
      if (typeof frame !== "string" || signal.aborted) break;
      out.write(`\x1b[H${frame.replace(/\n/g, "\x1b[K\n")}\n(every ${everyMs / 1000} s; Ctrl-C to quit)\x1b[K\x1b[J`);
      await delay(everyMs, signal);
    }
  } finally {
    out.write("\x1b[?25h\n");
  }
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => `  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")}`.trimEnd());
}

const n = (v: number | undefined) => (v === undefined ? "-" : String(v));
const ms = (v: number | null) => (v === null ? "-" : `${v} ms`);

function duration(msValue: number): string {
  if (msValue < 1_000) return `${Math.round(msValue)} ms`;
  if (msValue < 60_000) return `${(msValue / 1000).toFixed(1)} s`;
  if (msValue < 3_600_000) return `${Math.floor(msValue / 60_000)} m ${Math.round((msValue % 60_000) / 1000)} s`;
  return `${Math.floor(msValue / 3_600_000)} h ${Math.round((msValue % 3_600_000) / 60_000)} m`;
}
