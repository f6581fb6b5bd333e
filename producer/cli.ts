/**
 * The producer CLI.
 *   submit --file prompts.jsonl [--tenant T] [--traceparent TP]
 *                                              one JobInput JSON per line; prints the accepted ids. Each message
 *                                              carries a `traceparent` attribute: TP's trace, else a new one per job
 *   get <id>                                   prints the job's record as JSON
 *   wait <id…> [--timeout-seconds N] [--unknown-after-seconds N]
 *                                              waits for every id; exits 1 if any did not succeed
 *   usage --from ISO --to ISO [--tenant T]     totals of succeeded jobs per tenant and provider (tokens, cost)
 *   status [--once] [--json] [--since ISO]     the fleet: queues, workers, last minute, providers, cost since
 *                                              --since (default: midnight UTC); redrawn every 2 s on a terminal
 *   batch … / jobs get …                       through the Results API (FLEET_API_URL, FLEET_API_KEY): api-cli.ts
 * Exit codes: 0 ok; 1 a job missing, unknown, timed out or not succeeded (status: a section could not be read);
 * 2 usage or other error; 3 the job store is unreachable and Redis has no record. Config from the environment (see .env.example): QUEUE_URLS or QUEUE_NAME
 * (+ SQS_ENDPOINT), DATABASE_URL, REDIS_URL.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig, type Config } from "../shared/config.ts";
import type { JobInput } from "../shared/contract.ts";
import { StoreError } from "../shared/errors.ts";
import { parseTraceparent } from "../shared/trace.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool } from "../shared/store/pool.ts";
import { PresenceStore } from "../shared/store/presence.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { throughput } from "../shared/store/throughput.ts";
import { gatherFleetStatus, type FleetSources } from "./fleet-status.ts";
import { renderFleetStatus, watch } from "./fleet-status-view.ts";
import { Producer } from "./producer.ts";
import { ResultReader } from "./results.ts";
import { runApiCommand, USAGE as API_USAGE } from "./api-cli.ts";

const USAGE = `usage:
  submit --file prompts.jsonl [--tenant T] [--traceparent 00-<32 hex>-<16 hex>-<2 hex>]
  get <id>
  wait <id...> [--timeout-seconds N (default 3600)] [--unknown-after-seconds N (default 30)]
  usage --from ISO-TIME --to ISO-TIME [--tenant T]
  status [--once] [--json] [--since ISO-TIME (default: today 00:00 UTC)]
${API_USAGE}`;

/**
 * A job's row is created when a worker first claims it, so "no record yet" is normal for a while after submit.
 * `wait` calls an id unknown only when Postgres answers that it has no row (and Redis none) this long after the wait
 * began; raise it when the queue holds a backlog longer than that.
 */
const DEFAULT_UNKNOWN_AFTER_SECONDS = 30;
const DEFAULT_TIMEOUT_SECONDS = 3600;
const EXIT_STORE_UNREACHABLE = 3;

async function main(argv: string[]): Promise<number> {
  // Through the Results API (a key, no database credentials): producer/api-cli.ts has its own flags.
  if (argv[0] === "batch" || argv[0] === "jobs") {
    const { apiClient } = loadConfig();
    if (apiClient.key === undefined) throw new UsageError(`FLEET_API_KEY is required for ${argv[0]} (make keys, or make serve's api_key)`);
    return runApiCommand({ url: apiClient.url, key: apiClient.key }, argv);
  }
  const { values, positionals } = parseFlags(argv);
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  switch (command) {
    case "submit":
      if (values.file === undefined) throw new UsageError("submit needs --file");
      if (values.traceparent !== undefined && parseTraceparent(values.traceparent) === undefined) {
        throw new UsageError("--traceparent must be a W3C traceparent, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
      }
      return submit(loadConfig(), values.file, values.tenant, values.traceparent);
    case "get":
      if (rest.length !== 1) throw new UsageError("get needs exactly one id");
      return withReader(loadConfig(), (reader) => get(reader, rest[0]!));
    case "wait": {
      if (rest.length === 0) throw new UsageError("wait needs at least one id");
      const timeoutSeconds = seconds(values["timeout-seconds"], "--timeout-seconds", DEFAULT_TIMEOUT_SECONDS, false);
      const unknownAfterSeconds = seconds(values["unknown-after-seconds"], "--unknown-after-seconds", DEFAULT_UNKNOWN_AFTER_SECONDS, true);
      return withReader(loadConfig(), (reader) => wait(reader, rest, timeoutSeconds, unknownAfterSeconds));
    }
    case "usage": {
      const from = instant(values.from, "--from");
      const to = instant(values.to, "--to");
      if (from >= to) throw new UsageError("--from must be before --to");
      return withStore(loadConfig(), async (store) => {
        for (const row of await store.usage({ from, to, tenant: values.tenant })) process.stdout.write(`${JSON.stringify(row)}\n`);
        return 0;
      });
    }
    case "status": {
      const since = values.since === undefined ? startOfUtcDay(new Date()) : instant(values.since, "--since");
      return fleetStatus(loadConfig(), { once: values.once === true, json: values.json === true, since });
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        file: { type: "string" },
        tenant: { type: "string" },
        traceparent: { type: "string" },
        "timeout-seconds": { type: "string" },
        "unknown-after-seconds": { type: "string" },
        from: { type: "string" },
        to: { type: "string" },
        since: { type: "string" },
        once: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A flag's value as a finite number of seconds (> 0, or ≥ 0 when zero is allowed), else a usage error. */
function seconds(raw: string | undefined, flag: string, fallback: number, zeroAllowed: boolean): number {
  if (raw === undefined) return fallback;
  const n = raw.trim() === "" ? Number.NaN : Number(raw);
  // AbortSignal.timeout takes at most 2^32-1 ms (~49 days): beyond that it throws, so refuse it here.
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zeroAllowed) || n * 1000 > 0xffffffff) {
    throw new UsageError(`${flag} must be a number of seconds ${zeroAllowed ? "≥ 0" : "> 0"} (up to 49 days), got ${JSON.stringify(raw)}`);
  }
  return n;
}

async function get(reader: ResultReader, id: string): Promise<number> {
  const found = await reader.find(id);
  if (found === undefined) {
    process.stderr.write(`no job with id ${id}\n`);
    return 1;
  }
  if (found.storeError) process.stderr.write(`answered from Redis: ${found.storeError.message}\n`);
  process.stdout.write(`${JSON.stringify(found.record)}\n`);
  return 0;
}

async function wait(reader: ResultReader, ids: string[], timeoutSeconds: number, unknownAfterSeconds: number): Promise<number> {
  let warned = false;
  const { records, unknown } = await reader.waitForAll(ids, {
    signal: AbortSignal.timeout(Math.round(timeoutSeconds * 1000)),
    unknownAfterMs: unknownAfterSeconds * 1000,
    onStoreError: (err) => {
      if (!warned) process.stderr.write(`still waiting, on Redis alone for now: ${err.message}\n`);
      warned = true;
    },
  });
  const unknownIds = new Set(unknown);
  for (const id of ids) {
    const status = unknownIds.has(id) ? "unknown" : "timeout";
    process.stdout.write(`${JSON.stringify(records.get(id) ?? { id, status })}\n`);
  }
  if (unknown.length > 0) {
    process.stderr.write(`unknown id(s), no record in Postgres or Redis after ${unknownAfterSeconds} s (never submitted, or not yet claimed by a worker): ${unknown.join(", ")}\n`);
  }
  return ids.every((id) => records.get(id)?.status === "succeeded") ? 0 : 1;
}

async function submit(config: Config, file: string, tenant: string | undefined, traceparent: string | undefined): Promise<number> {
  const lines = readFileSync(file, "utf8").split("\n");
  const inputs: JobInput[] = [];
  const lineOf: number[] = [];
  let bad = 0;
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      const input = JSON.parse(line) as JobInput;
      inputs.push(tenant === undefined || input.tenant !== undefined ? input : { ...input, tenant });
      lineOf.push(i + 1);
    } catch (err) {
      bad += 1;
      process.stderr.write(`${file}:${i + 1}: not JSON: ${(err as Error).message}\n`);
    }
  });
  const queue = new SqsQueue({ region: config.queue.region, endpoint: config.queue.endpoint });
  try {
    const queueUrl = config.queue.urls?.[0] ?? (await queue.queueUrl(config.queue.name));
    const result = await new Producer({ queue, queueUrl }).submitMany(inputs, { traceparent });
    for (const f of result.failed) process.stderr.write(`${file}:${lineOf[f.index]}: ${f.code}: ${f.message}\n`);
    for (const id of result.ids) process.stdout.write(`${id}\n`);
    return bad + result.failed.length === 0 ? 0 : 1;
  } finally {
    queue.close();
  }
}

/** A required ISO-8601 time flag, else a usage error. */
function instant(raw: string | undefined, flag: string): Date {
  const t = raw === undefined ? Number.NaN : Date.parse(raw);
  if (!Number.isFinite(t)) throw new UsageError(`${flag} needs an ISO-8601 time, e.g. 2026-12-01T00:00:00Z`);
  return new Date(t);
}

/**
 * One look (--once, --json, or stdout not a terminal), else redrawn in place every 2 s until Ctrl-C (exit 0).
 * A single look exits 1 when a section could not be read (it is still printed, the failure named in `errors`).
 */
async function fleetStatus(config: Config, o: { once: boolean; json: boolean; since: Date }): Promise<number> {
  if (config.store.databaseUrl === undefined) throw new UsageError("DATABASE_URL is required for fleet status");
  const pool = await createPool({ url: config.store.databaseUrl, poolSize: 4 });
  const queue = new SqsQueue({ region: config.queue.region, endpoint: config.queue.endpoint });
  try {
    const sources: FleetSources = {
      queue,
      queueUrls: config.queue.urls ?? [await queue.queueUrl(config.queue.name)],
      presence: new PresenceStore(pool),
      throughput: (windowMs) => throughput(pool, windowMs),
      usage: new JobStore(pool),
      costSince: o.since,
    };
    if (o.once || o.json || !process.stdout.isTTY) {
      const status = await gatherFleetStatus(sources);
      process.stdout.write(o.json ? `${JSON.stringify(status)}\n` : renderFleetStatus(status));
      return status.errors.length === 0 ? 0 : 1;
    }
    const stop = new AbortController();
    const onInterrupt = () => stop.abort();
    process.once("SIGINT", onInterrupt);
    try {
      await watch(async () => renderFleetStatus(await gatherFleetStatus(sources)), process.stdout, stop.signal);
    } finally {
      process.off("SIGINT", onInterrupt);
    }
    return 0;
  } finally {
    queue.close();
    await pool.end();
  }
}

function startOfUtcDay(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}

async function withStore(config: Config, fn: (store: JobStore) => Promise<number>): Promise<number> {
  if (config.store.databaseUrl === undefined) throw new UsageError("DATABASE_URL is required to read usage");
  const pool = await createPool({ url: config.store.databaseUrl, poolSize: 1 });
  try {
    return await fn(new JobStore(pool));
  } finally {
    await pool.end();
  }
}

async function withReader(config: Config, fn: (reader: ResultReader) => Promise<number>): Promise<number> {
  if (config.store.databaseUrl === undefined) throw new UsageError("DATABASE_URL is required to read results");
  const pool = await createPool({ url: config.store.databaseUrl, poolSize: 4 });
  const cache = config.store.redisUrl ? new ResultsCache({ url: config.store.redisUrl, ttlSeconds: config.store.resultTtlSeconds }) : undefined;
  try {
    // Until the socket is open every cache read is a miss: a one-shot `get` would skip Redis entirely.
    await cache?.ready();
    return await fn(new ResultReader(new JobStore(pool), cache));
  } finally {
    await cache?.close();
    await pool.end();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const unreachable = err instanceof StoreError && err.code === "STORE_UNAVAILABLE";
    process.stderr.write(`${err instanceof UsageError ? `${err.message}\n${USAGE}` : err.message}\n`);
    process.exit(unreachable ? EXIT_STORE_UNREACHABLE : 2);
  },
);
