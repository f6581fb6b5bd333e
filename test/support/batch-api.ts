/**
 * The batch API on a bare Fastify app for tests: a stub auth hook maps a bearer key to its tenant (test/api-batch
 * runs it behind the real auth), two batch runners (two "replicas") on one migrated schema, the official openai client.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import OpenAI from "openai";
import { installErrorHandlers } from "../../producer/api/errors.ts";
import type pg from "pg";
import { FileStore } from "../../producer/api/files/file-store.ts";
import type { UploadLimits } from "../../producer/api/files/upload.ts";
import { BatchStore } from "../../producer/api/batches/batch-store.ts";
import { batchRoutes } from "../../producer/api/batches/plugin.ts";
import { BatchRunner, type BatchRunnerOptions } from "../../producer/api/batches/runner.ts";
import { Producer } from "../../producer/producer.ts";
import { JobStore } from "../../shared/store/jobs.ts";
import { createPool } from "../../shared/store/pool.ts";
import { silentLog, type QueueFixture, type StoreFixture } from "./env.ts";

export const KEYS: Record<string, string> = { "sk-acme": "acme", "sk-globex": "globex" };

export interface BatchApi {
  url: string;
  pool: pg.Pool;
  client(key?: string): OpenAI;
  runners: BatchRunner[];
  close(): Promise<void>;
}

export async function startBatchApi(
  s: StoreFixture,
  q: QueueFixture,
  o: { limits?: Partial<UploadLimits>; runners?: number; runner?: Partial<BatchRunnerOptions> } = {},
): Promise<BatchApi> {
  const pool = await createPool({ url: s.url, poolSize: 12, schema: s.schema });
  const app: FastifyInstance = Fastify();
  // What the API core's buildApi sets on the root instance: zod schemas and OpenAI-shaped errors.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app, 1_048_576);
  app.addHook("onRequest", async (req, reply) => {
    const tenant = KEYS[/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? ""];
    if (tenant === undefined) return reply.code(401).send({ error: { message: "bad key", type: "authentication_error", param: null, code: "invalid_api_key" } });
    (req as typeof req & { tenant: string }).tenant = tenant;
  });
  await app.register(batchRoutes, { prefix: "/v1", pool, limits: o.limits });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  const runners = Array.from({ length: o.runners ?? 2 }, () => {
    const runner = new BatchRunner({
      pool,
      batches: new BatchStore(pool),
      files: new FileStore(pool),
      jobs: new JobStore(pool),
      producer: new Producer({ queue: q.queue, queueUrl: q.queueUrl }),
      log: silentLog,
      intervalMs: 50,
      enqueueChunk: 7,
      finishGraceMs: 5_000,
      ...o.runner,
    });
    runner.start();
    return runner;
  });
  return {
    url,
    pool,
    runners,
    client: (key = "sk-acme") => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 }),
    close: async () => {
      await Promise.all(runners.map((r) => r.stop()));
      await app.close();
      await pool.end();
    },
  };
}

/** JSONL of chat requests, one per custom id. */
export function chatLines(ids: string[], body: Record<string, unknown> = {}): string {
  return ids
    .map((id) => JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "meta-llama/Llama-3.1-8B-Instruct", messages: [{ role: "user", content: `say ${id}` }], max_tokens: 4, ...body } }))
    .map((l) => `${l}\n`)
    .join("");
}

/** A downloaded JSONL file's lines, parsed. */
export async function jsonl(response: Response): Promise<Record<string, any>[]> {
  const text = await response.text();
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, any>);
}
