/**
 * The producer CLI.
 *   submit --file prompts.jsonl [--tenant T]   one JobInput JSON per line; prints the accepted ids
 *   get <id>                                   prints the job's record as JSON
 *   wait <id…> [--timeout-seconds N]           waits for every id; exits 1 if any did not succeed
 * Config from the environment (see .env.example): QUEUE_URLS or QUEUE_NAME (+ SQS_ENDPOINT), DATABASE_URL, REDIS_URL.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig, type Config } from "../shared/config.ts";
import type { JobInput } from "../shared/contract.ts";
import { SqsQueue } from "../shared/queue/sqs.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool } from "../shared/store/pool.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";
import { Producer } from "./producer.ts";
import { ResultReader } from "./results.ts";

const USAGE = `usage:
  submit --file prompts.jsonl [--tenant T]
  get <id>
  wait <id...> [--timeout-seconds N]`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { file: { type: "string" }, tenant: { type: "string" }, "timeout-seconds": { type: "string" }, help: { type: "boolean" } },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const config = loadConfig();
  switch (command) {
    case "submit":
      if (values.file === undefined) throw new UsageError("submit needs --file");
      return submit(config, values.file, values.tenant);
    case "get":
      if (rest.length !== 1) throw new UsageError("get needs exactly one id");
      return withReader(config, async (reader) => {
        const record = await reader.get(rest[0]!);
        if (record === undefined) {
          process.stderr.write(`no job with id ${rest[0]}\n`);
          return 1;
        }
        process.stdout.write(`${JSON.stringify(record)}\n`);
        return 0;
      });
    case "wait": {
      if (rest.length === 0) throw new UsageError("wait needs at least one id");
      const timeout = Number(values["timeout-seconds"] ?? 3600);
      return withReader(config, async (reader) => {
        const records = await reader.waitFor(rest, { signal: AbortSignal.timeout(timeout * 1000) });
        let bad = 0;
        for (const id of rest) {
          const r = records.get(id);
          if (r?.status !== "succeeded") bad += 1;
          process.stdout.write(`${JSON.stringify(r ?? { id, status: "timeout" })}\n`);
        }
        return bad === 0 ? 0 : 1;
      });
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

async function submit(config: Config, file: string, tenant: string | undefined): Promise<number> {
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
    const result = await new Producer({ queue, queueUrl }).submitMany(inputs);
    for (const f of result.failed) process.stderr.write(`${file}:${lineOf[f.index]}: ${f.code}: ${f.message}\n`);
    for (const id of result.ids) process.stdout.write(`${id}\n`);
    return bad + result.failed.length === 0 ? 0 : 1;
  } finally {
    queue.close();
  }
}

async function withReader(config: Config, fn: (reader: ResultReader) => Promise<number>): Promise<number> {
  if (config.store.databaseUrl === undefined) throw new UsageError("DATABASE_URL is required to read results");
  const pool = await createPool({ url: config.store.databaseUrl, poolSize: 4 });
  const cache = config.store.redisUrl ? new ResultsCache({ url: config.store.redisUrl, ttlSeconds: config.store.resultTtlSeconds }) : undefined;
  try {
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
    process.stderr.write(`${err instanceof UsageError ? `${err.message}\n${USAGE}` : err.message}\n`);
    process.exit(2);
  },
);
