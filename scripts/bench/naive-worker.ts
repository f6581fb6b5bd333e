/**
 * The baseline: the worker a user would write with sqs-consumer — batchSize 10, handleMessageBatch running the
 * batch concurrently, one INSERT per result. Its ceiling: 10 in flight, and no poll until the whole batch ends.
 * Env: QUEUE_URL, SQS_ENDPOINT, DATABASE_URL, VLLM_URL. The bench creates `naive_results` before starting us.
 */
import { Consumer } from "sqs-consumer";
import { SQSClient } from "@aws-sdk/client-sqs";
import pg from "pg";
import { VllmClient } from "../../shared/providers/vllm.ts";

const env = process.env as Record<string, string>;
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 10 });
const vllm = new VllmClient({ baseUrl: env.VLLM_URL!, model: "meta-llama/Llama-3.1-8B-Instruct", timeoutMs: 600_000, connections: 16 });
const consumer = Consumer.create({
  queueUrl: env.QUEUE_URL!,
  sqs: new SQSClient({ region: "us-east-1", endpoint: env.SQS_ENDPOINT, credentials: { accessKeyId: "x", secretAccessKey: "x" } }),
  batchSize: 10,
  waitTimeSeconds: 1,
  handleMessageBatch: async (messages) => {
    await Promise.all(
      messages.map(async (m) => {
        const job = JSON.parse(m.Body!) as { id: string; messages: { role: "user"; content: string }[]; params: { max_tokens: number } };
        const out = await vllm.generate({ messages: job.messages, params: job.params });
        await pool.query("INSERT INTO naive_results (id, output) VALUES ($1, $2) ON CONFLICT DO NOTHING", [job.id, out.text]);
      }),
    );
    return messages;
  },
});
consumer.on("error", (err) => process.stderr.write(`naive: ${err.message}\n`));
process.on("SIGTERM", () => {
  consumer.stop();
  void Promise.all([pool.end(), vllm.close()]).then(() => process.exit(0));
});
consumer.start();
process.send?.({ type: "ready" });
