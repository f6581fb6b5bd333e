/**
 * The dead-letter queue tool.
 *   list [--max N]                 what is in the DLQ: job id, failure code/reason, deliveries, body preview
 *   inspect <message-or-job-id>    one message in full, with its job's record when DATABASE_URL is set
 *   redrive [--id JOB_ID ...] [--max N]
 *                                  move messages back to the source queue (all, or the given job ids); their jobs'
 *                                  `dead` records are reopened first so the workers run them again
 * Config from the environment: QUEUE_URLS (first = source) or QUEUE_NAME, SQS_ENDPOINT, AWS_REGION, DATABASE_URL.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../shared/config.ts";
import { jobIdOf } from "../shared/contract.ts";
import { SqsQueue, type ReceivedMessage } from "../shared/queue/sqs.ts";
import { JobStore } from "../shared/store/jobs.ts";
import { createPool } from "../shared/store/pool.ts";

const USAGE = "usage: dlq list [--max N] | dlq inspect <id> | dlq redrive [--id JOB_ID ...] [--max N]";

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
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { max: { type: "string" }, id: { type: "string", multiple: true } } });
  const [command, arg] = positionals;
  const config = loadConfig();
  const queue = new SqsQueue({ region: config.queue.region, endpoint: config.queue.endpoint });
  const pool = config.store.databaseUrl ? await createPool({ url: config.store.databaseUrl, poolSize: 2 }) : undefined;
  const store = pool && new JobStore(pool);
  try {
    const sourceUrl = config.queue.urls?.[0] ?? (await queue.queueUrl(config.queue.name));
    const dlqUrl = await queue.deadLetterQueueUrl(sourceUrl);
    if (dlqUrl === undefined) throw new Error("the source queue has no RedrivePolicy, so no DLQ");
    const max = Number(values.max ?? 100);
    switch (command) {
      case "list": {
        const messages = await peek(queue, dlqUrl, max);
        for (const m of messages) {
          const reason = m.attributes?.failure_code ? `${m.attributes.failure_code}: ${m.attributes.failure_reason ?? ""}` : "(moved by redrive policy)";
          process.stdout.write(`${m.messageId}  job=${jobIdOf(m.body) ?? "-"}  deliveries=${m.receiveCount}  ${reason}  ${m.body.slice(0, 80).replace(/\s+/g, " ")}\n`);
        }
        process.stdout.write(`${messages.length} message(s) in ${dlqUrl}\n`);
        return 0;
      }
      case "inspect": {
        if (arg === undefined) throw new Error(USAGE);
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
        const only = values.id === undefined ? undefined : new Set(values.id);
        const filter = (m: ReceivedMessage) => only === undefined || only.has(jobIdOf(m.body) ?? "");
        if (store) {
          const ids = (await peek(queue, dlqUrl, max)).filter(filter).flatMap((m) => jobIdOf(m.body) ?? []);
          await store.reopenDead(ids);
        }
        const moved = await queue.redrive(dlqUrl, sourceUrl, { max, filter });
        process.stdout.write(`moved ${moved} message(s) back to ${sourceUrl}\n`);
        return 0;
      }
      default:
        process.stderr.write(`${USAGE}\n`);
        return 2;
    }
  } finally {
    queue.close();
    await pool?.end();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`dlq: ${err.message}\n`);
    process.exit(1);
  },
);
