/**
 * The dead-letter queue tool.
 *   list [--max N]                 what is in the DLQ: job id, failure code/reason, deliveries, body preview
 *   inspect <message-or-job-id>    one message in full, with its job's record when DATABASE_URL is set
 *   redrive [--id JOB_ID ...] [--max N]
 *                                  move messages back to the source queue (all, or the given job ids), reopening
 *                                  each batch's `dead` jobs just before it is sent (scripts/dlq-redrive.ts). Needs
 *                                  DATABASE_URL: without it the jobs would stay dead and workers would drop them.
 * Config from the environment: QUEUE_URLS (first = source) or QUEUE_NAME, SQS_ENDPOINT, AWS_REGION, DATABASE_URL.
 * Exit codes: 0 done; 1 failed (or a redrive left stranded jobs); 2 usage error.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../shared/config.ts";
import { jobIdOf } from "../shared/contract.ts";
import { maskPii } from "../shared/pii.ts";
import { SqsQueue, type ReceivedMessage } from "../shared/queue/sqs.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool } from "../shared/store/pool.ts";
import { redriveDeadLetters } from "./dlq-redrive.ts";

const USAGE = "usage: dlq list [--max N] | dlq inspect <id> | dlq redrive [--id JOB_ID ...] [--max N]";
const COMMANDS = ["list", "inspect", "redrive"];
const REDRIVE_NEEDS_DATABASE = "redrive needs DATABASE_URL: it reopens the dead jobs it moves (a job left dead is deleted unrun by the workers)";

/** Reads up to `max` DLQ messages without consuming them: they are hidden while read, then made visible again. */
async function peek(queue: SqsQueue, dlqUrl: string, max: number): Promise<ReceivedMessage[]> {
  const seen: ReceivedMessage[] = [];
  while (seen.length < max) {
    const batch = await queue.receive(dlqUrl, { maxMessages: Math.min(10, max - seen.length), waitTimeSeconds: 1, visibilityTimeoutSeconds: 60 });
    if (batch.length === 0) break;
    seen.push(...batch);
  }
  for (let i = 0; i < seen.length; i += 10) {
    await queue.changeVisibilityBatch(dlqUrl, seen.slice(i, i + 10).map((m, j) => ({ id: String(j), receiptHandle: m.receiptHandle, visibilityTimeoutSeconds: 0 })));
  }
  return seen;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv);
  const [command, arg] = positionals;
  if (command === undefined || !COMMANDS.includes(command)) throw new UsageError(command === undefined ? "a command is required" : `unknown command ${command}`);
  // list/inspect read a sample; redrive runs until the DLQ (or the --id list) is done unless told otherwise.
  const max = positiveInteger(values.max, "--max", command === "redrive" ? Number.POSITIVE_INFINITY : 100);
  const config = loadConfig();
  if (command === "redrive" && config.store.databaseUrl === undefined) throw new UsageError(REDRIVE_NEEDS_DATABASE);
  const queue = new SqsQueue({ region: config.queue.region, endpoint: config.queue.endpoint });
  const pool = config.store.databaseUrl ? await createPool({ url: config.store.databaseUrl, poolSize: 2 }) : undefined;
  const store = pool && new JobStore(pool);
  try {
    const sourceUrl = config.queue.urls?.[0] ?? (await queue.queueUrl(config.queue.name));
    const dlqUrl = await queue.deadLetterQueueUrl(sourceUrl);
    if (dlqUrl === undefined) throw new Error("the source queue has no RedrivePolicy, so no DLQ");
    switch (command) {
      case "list": {
        const messages = await peek(queue, dlqUrl, max);
        for (const m of messages) {
          const reason = m.attributes?.failure_code ? `${m.attributes.failure_code}: ${m.attributes.failure_reason ?? ""}` : "(moved by redrive policy)";
          process.stdout.write(`${m.messageId}  job=${jobIdOf(m.body) ?? "-"}  deliveries=${m.receiveCount}  ${reason}  ${maskPii(m.body.slice(0, 80).replace(/\s+/g, " "))}\n`);
        }
        process.stdout.write(`${messages.length} message(s) in ${dlqUrl}\n`);
        return 0;
      }
      case "inspect": {
        if (arg === undefined) throw new UsageError("inspect needs a message or job id");
        const m = (await peek(queue, dlqUrl, max)).find((x) => x.messageId === arg || jobIdOf(x.body) === arg);
        if (m === undefined) {
          process.stderr.write(`no message ${arg} among the first ${max} in the DLQ\n`);
          return 1;
        }
        const id = jobIdOf(m.body);
        const record = id && store ? await store.get(id) : undefined;
        process.stdout.write(`${JSON.stringify({ message: m, job: record }, null, 2)}\n`);
        return 0;
      }
      case "redrive": {
        const ids = values.id === undefined ? undefined : new Set(values.id);
        if (store === undefined) throw new UsageError(REDRIVE_NEEDS_DATABASE);
        const result = await redriveDeadLetters({ queue, store, dlqUrl, sourceUrl, ids, max });
        process.stdout.write(`moved ${result.moved} message(s) back to ${sourceUrl}; reopened ${result.reopened.length} job(s)\n`);
        if (result.stranded.length === 0) return 0;
        process.stderr.write(`reopened but not moved (send failed; still in the DLQ, run redrive again): ${result.stranded.join(", ")}\n`);
        return 1;
      }
      default:
        throw new UsageError(`unknown command ${String(command)}`);
    }
  } finally {
    queue.close();
    await pool?.end();
  }
}

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: { max: { type: "string" }, id: { type: "string", multiple: true } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function positiveInteger(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(err instanceof UsageError ? `dlq: ${err.message}\n${USAGE}\n` : `dlq: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
