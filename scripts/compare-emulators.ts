/**
 * Runs the two npm SQS emulators (fauxqs, local-aws-sqs) side by side through the real @aws-sdk/client-sqs
 * (JSON protocol) and prints one table: the evidence behind the pick in docs/sqs-emulator.md.
 * Usage: node --import tsx scripts/compare-emulators.ts [--throughput-seconds 5] [--skip-retention]
 * The retention probe needs ~62 s (SQS minimum retention is 60 s); it runs alongside the other probes.
 */
import { Agent } from "node:http";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { parseArgs } from "node:util";
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";

interface Started {
  endpoint: string;
  boundTo: string;
  startMs: number;
  stop(): Promise<void>;
}

interface Candidate {
  name: string;
  start(): Promise<Started>;
}

const candidates: Candidate[] = [
  {
    name: "fauxqs 1.9.2",
    async start() {
      const t0 = performance.now();
      const app = buildApp({ logger: false });
      await app.listen({ port: 0, host: "127.0.0.1" });
      const addr = app.server.address() as AddressInfo;
      return { endpoint: `http://127.0.0.1:${addr.port}`, boundTo: `${addr.address}:${addr.port}`, startMs: performance.now() - t0, stop: () => app.close() };
    },
  },
  {
    name: "local-aws-sqs 2.0.2",
    async start() {
      const t0 = performance.now();
      // CommonJS package; loaded lazily so this script still runs if the devDependency is absent.
      const { createSqsServer } = (await import("local-aws-sqs")) as { createSqsServer(o: { port: number; hostname?: string }): Promise<Server> };
      const server = await createSqsServer({ port: 0, hostname: "127.0.0.1" });
      const addr = server.address() as AddressInfo;
      return {
        endpoint: `http://127.0.0.1:${addr.port}`,
        boundTo: `${addr.address}:${addr.port}`,
        startMs: performance.now() - t0,
        stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
      };
    },
  },
];

type Probe = (sqs: SQSClient, prefix: string) => Promise<string>;

/** Name and code as the SDK surfaces them: what a classifier has to match on. */
function describeError(err: unknown): string {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; $fault?: string; constructor?: { name?: string } };
  return `${e.constructor?.name ?? "?"} name=${e.name} Code=${e.Code ?? "-"} http=${e.$metadata?.httpStatusCode ?? "-"} ${e.$fault ?? ""}`.trim();
}

async function expectError(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "NO ERROR";
  } catch (err) {
    return describeError(err);
  }
}

async function createQueue(sqs: SQSClient, name: string, attributes: Record<string, string> = {}): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  return out.QueueUrl!;
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
  return out.Attributes!.QueueArn!;
}

async function counts(sqs: SQSClient, url: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }));
  return `${out.Attributes?.ApproximateNumberOfMessages}/${out.Attributes?.ApproximateNumberOfMessagesNotVisible}`;
}

async function receive(sqs: SQSClient, url: string, max = 10, visibility?: number, wait = 0) {
  const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: max, VisibilityTimeout: visibility, WaitTimeSeconds: wait, MessageSystemAttributeNames: ["ApproximateReceiveCount"], AttributeNames: ["All"] }));
  return out.Messages ?? [];
}

const probes: Record<string, Probe> = {
  async "error: GetQueueUrl missing"(sqs, p) {
    return expectError(() => sqs.send(new GetQueueUrlCommand({ QueueName: `${p}-missing` })));
  },
  async "error: Send to deleted/unknown URL"(sqs, p) {
    const url = (await createQueue(sqs, `${p}-err`)).replace(/-err$/, "-nope");
    return expectError(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x" })));
  },
  async "error: DeleteMessage bad handle"(sqs, p) {
    const url = await createQueue(sqs, `${p}-badh`);
    return expectError(() => sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: "not-a-handle" })));
  },
  async "DeleteMessageBatch bad handle"(sqs, p) {
    const url = await createQueue(sqs, `${p}-dmb`);
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "ok" }));
    const [m] = await receive(sqs, url, 1);
    const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: "good", ReceiptHandle: m!.ReceiptHandle! }, { Id: "bad", ReceiptHandle: "bogus-handle" }] }));
    const failed = (out.Failed ?? []).map((f) => `${f.Id}:${f.Code}`).join(",") || "none";
    return `ok=${(out.Successful ?? []).map((s) => s.Id).join(",")} failed=${failed}`;
  },
  async "long poll wakes on send"(sqs, p) {
    const url = await createQueue(sqs, `${p}-lp`);
    const t0 = performance.now();
    const pending = receive(sqs, url, 1, undefined, 5);
    await new Promise((r) => setTimeout(r, 300)); // let the receive reach the server and start waiting
    const sentAt = performance.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "wake" }));
    const got = await pending;
    return `${got.length} msg, ${Math.round(performance.now() - sentAt)} ms after send (total ${Math.round(performance.now() - t0)} ms)`;
  },
  async "visibility + ChangeVisibilityBatch"(sqs, p) {
    const url = await createQueue(sqs, `${p}-vis`);
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: "a", MessageBody: "a" }, { Id: "b", MessageBody: "b" }] }));
    const got = await receive(sqs, url, 10, 30);
    const hiddenNow = (await receive(sqs, url, 10)).length;
    const byBody = new Map(got.map((m) => [m.Body, m.ReceiptHandle!]));
    const out = await sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: [
      { Id: "a", ReceiptHandle: byBody.get("a")!, VisibilityTimeout: 0 },
      { Id: "b", ReceiptHandle: byBody.get("b")!, VisibilityTimeout: 60 },
      { Id: "x", ReceiptHandle: "bogus", VisibilityTimeout: 0 },
    ] }));
    const again = (await receive(sqs, url, 10)).map((m) => m.Body).join(",");
    const failed = (out.Failed ?? []).map((f) => `${f.Id}:${f.Code}`).join(",") || "none";
    return `recv ${got.length}, visible while held ${hiddenNow}; batch ok=${out.Successful?.length ?? 0} failed=${failed}; reappeared=[${again}]`;
  },
  async "receive count via MessageSystemAttributeNames only"(sqs, p) {
    const url = await createQueue(sqs, `${p}-msa`);
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "m" }));
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"] }));
    const attrs = out.Messages?.[0]?.Attributes;
    return attrs && Object.keys(attrs).length > 0 ? `returned ${Object.keys(attrs).join(",")}` : "IGNORED (only legacy AttributeNames honoured)";
  },
  async "redrive to DLQ (maxReceiveCount 2)"(sqs, p) {
    const dlq = await createQueue(sqs, `${p}-dlq`);
    const url = await createQueue(sqs, `${p}-src`, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await queueArn(sqs, dlq), maxReceiveCount: 2 }) });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "poison" }));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const got = await receive(sqs, url, 1, 0);
      seen.push(got[0]?.Attributes?.ApproximateReceiveCount ?? "-");
    }
    const inDlq = await receive(sqs, dlq, 1);
    return `receiveCounts=[${seen.join(",")}] dlq=${inDlq.length} (count ${inDlq[0]?.Attributes?.ApproximateReceiveCount ?? "-"})`;
  },
  async "approx counts visible/notVisible"(sqs, p) {
    const url = await createQueue(sqs, `${p}-cnt`);
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: ["1", "2", "3"].map((i) => ({ Id: i, MessageBody: i })) }));
    const afterSend = await counts(sqs, url);
    await receive(sqs, url, 1, 30);
    const afterRecv = await counts(sqs, url);
    return `after send ${afterSend} (want 3/0); after 1 receive ${afterRecv} (want 2/1)`;
  },
  async "1 MiB limit"(sqs, p) {
    const url = await createQueue(sqs, `${p}-big`);
    const exact = await expectError(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x".repeat(1_048_576) })));
    const over = await expectError(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x".repeat(1_048_577) })));
    const batch = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: "s", MessageBody: "s" }, { Id: "b", MessageBody: "x".repeat(1_048_577) }] })).then(
      (o) => `batch ok=${o.Successful?.length ?? 0} failed=${(o.Failed ?? []).map((f) => `${f.Id}:${f.Code}`).join(",") || "none"}`,
      (e) => `batch threw ${describeError(e)}`,
    );
    return `1 MiB: ${exact === "NO ERROR" ? "accepted" : exact}; 1 MiB+1: ${over}; ${batch}`;
  },
};

async function retentionProbe(sqs: SQSClient, p: string): Promise<string> {
  const url = await createQueue(sqs, `${p}-ret`, { MessageRetentionPeriod: "60" });
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "old" }));
  await new Promise((r) => setTimeout(r, 62_000));
  const left = await receive(sqs, url, 10);
  return left.length === 0 ? "expired after 60 s" : `NOT enforced (${left.length} msg still there after 62 s)`;
}

/** Send+receive+delete in batches of 10 from a few parallel loops for `seconds`; msgs/s fully processed. */
async function throughput(sqs: SQSClient, p: string, seconds: number): Promise<string> {
  const url = await createQueue(sqs, `${p}-tp`);
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let done = 0;
  const loop = async (w: number) => {
    let n = 0;
    while (performance.now() < deadline) {
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody: `w${w}-${n++}-${"p".repeat(200)}` })) }));
      const got = await receive(sqs, url, 10);
      if (got.length === 0) continue;
      const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: got.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }));
      done += out.Successful?.length ?? 0;
    }
  };
  await Promise.all([0, 1, 2, 3].map(loop));
  const elapsed = (performance.now() - t0) / 1000;
  return `${Math.round(done / elapsed)} msgs/s (${done} in ${elapsed.toFixed(1)} s, 4 loops)`;
}

async function withTimeout<T>(ms: number, run: () => Promise<T>): Promise<T | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`TIMEOUT after ${ms} ms`), ms); });
  try {
    return await Promise.race([run().catch((e: unknown) => `FAILED ${describeError(e)}: ${(e as Error).message?.slice(0, 120)}`), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Running {
  candidate: Candidate;
  started: Started;
  sqs: SQSClient;
  retention: Promise<string>;
  row: Map<string, string>;
}

async function launch(candidate: Candidate, retention: boolean): Promise<Running> {
  const started = await candidate.start();
  const sqs = new SQSClient({
    region: "us-east-1",
    endpoint: started.endpoint,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    requestHandler: { httpAgent: new Agent({ maxSockets: 64, keepAlive: true }) },
    maxAttempts: 1, // see the raw behaviour, not the SDK's retries
  });
  const prefix = `cmp${Date.now().toString(36)}`;
  const row = new Map([["start in-process", `${started.startMs.toFixed(0)} ms, bound ${started.boundTo}`]]);
  return { candidate, started, sqs, row, retention: retention ? withTimeout(70_000, () => retentionProbe(sqs, prefix)) : Promise.resolve("skipped") };
}

async function evaluate(r: Running, throughputSeconds: number): Promise<void> {
  const prefix = `cmp${Date.now().toString(36)}`;
  for (const [name, probe] of Object.entries(probes)) r.row.set(name, String(await withTimeout(10_000, () => probe(r.sqs, prefix))));
  r.row.set("throughput (batches of 10)", String(await withTimeout(throughputSeconds * 1000 + 10_000, () => throughput(r.sqs, prefix, throughputSeconds))));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { "throughput-seconds": { type: "string", default: "5" }, "skip-retention": { type: "boolean", default: false } } });
  const running: Running[] = [];
  for (const c of candidates) running.push(await launch(c, !values["skip-retention"]));
  // Sequential so the throughput runs do not compete for the two cores; the retention waits overlap them.
  for (const r of running) await evaluate(r, Number(values["throughput-seconds"]));
  for (const r of running) {
    r.row.set("retention 60 s", await r.retention);
    r.sqs.destroy();
    await r.started.stop();
  }
  const names = [...running[0]!.row.keys()];
  console.log(`\n| check | ${candidates.map((c) => c.name).join(" | ")} |`);
  console.log(`|---|${candidates.map(() => "---").join("|")}|`);
  for (const n of names) console.log(`| ${n} | ${running.map((r) => (r.row.get(n) ?? "").replaceAll("|", "/")).join(" | ")} |`);
}

await main();
