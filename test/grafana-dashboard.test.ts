/**
 * terraform/grafana/fleet-dashboard.json queries only what the code exports: every metric named in any panel's
 * PromQL is in the exposition of a freshly built metrics facade (histograms with their _bucket/_sum/_count series).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { loadConfig } from "../shared/config.ts";
import { buildFleetMetrics } from "../shared/metrics/build-metrics.ts";
import { silentLog } from "./support/env.ts";

const DASHBOARD = new URL("../terraform/grafana/fleet-dashboard.json", import.meta.url);

/** Words in PromQL that are not metric names. */
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);

/** The metric names a PromQL expression reads: strings, label matchers, ranges, grouping clauses and calls removed. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = [...bare.matchAll(/(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?/g)].filter((m) => m[2] === undefined).map((m) => m[1]!);
  return [...new Set(names.filter((n) => !KEYWORDS.has(n.toLowerCase())))];
}

/** Every series name the exposition can carry: each `# TYPE` name, histograms and summaries with their suffixes. */
function exportedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    out.add(name!);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(name! + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) out.add(name! + s);
  }
  return out;
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function expressions(panels: Panel[]): { panel: string; expr: string }[] {
  return panels.flatMap((p) => [...(p.targets ?? []).flatMap((t) => (t.expr === undefined ? [] : [{ panel: p.title ?? "?", expr: t.expr }])), ...expressions(p.panels ?? [])]);
}

test("the PromQL extractor finds metric names and only them", () => {
  assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le, queue) (rate(fleet_queue_wait_seconds_bucket{outcome="x"}[$__rate_interval])))'), ["fleet_queue_wait_seconds_bucket"]);
  assert.deepEqual(metricNames("sum by (kind) (rate(a_sum[5m])) / sum by (kind) (rate(a_count[5m]))"), ["a_sum", "a_count"]);
  assert.deepEqual(metricNames("max by (provider) (fleet_provider_breaker_state) > bool 1"), ["fleet_provider_breaker_state"]);
});

test("every query of the Grafana dashboard names a metric the worker exports", async () => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8")) as { panels: Panel[] };
  const metrics = await buildFleetMetrics(loadConfig({}).metrics, { service: "llm-fleet-worker", region: "us-east-1", log: silentLog });
  try {
    const exported = exportedNames(await metrics.exposition().metrics());
    assert.ok(exported.has("fleet_jobs_finished_total") && exported.has("gen_ai_client_token_usage_bucket"), "the registry lists the fleet's metrics");
    const queries = expressions(dashboard.panels);
    assert.ok(queries.length >= 10, `only ${queries.length} queries`);
    const missing = queries.flatMap(({ panel, expr }) => {
      const names = metricNames(expr);
      if (names.length === 0) return [`${panel}: no metric in ${expr}`];
      return names.filter((n) => !exported.has(n)).map((n) => `${panel}: ${n}`);
    });
    assert.deepEqual(missing, []);
    // The check can fail: a name the code does not export is reported.
    assert.deepEqual(metricNames("rate(fleet_jobs_finishd_total[5m])").filter((n) => !exported.has(n)), ["fleet_jobs_finishd_total"]);
  } finally {
    await metrics.close();
  }
});
