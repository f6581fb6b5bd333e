/**
 * Memory of the API process while a large batch input file uploads (issue 10's closing number). The batch routes
 * run in a child process (stub auth: any key is tenant `bench`); this process generates a JSONL file of `--mb` MB
 * with `--requests` lines on the fly and streams it with the openai SDK's toStreamingFile (never held here either),
 * sampling the child's RSS from /proc every 100 ms. Postgres at DATABASE_URL (default the local test database), in
 * a schema of its own dropped at the end.
 *   npx tsx scripts/bench/upload-memory.ts --mb 200 --requests 50000
 * Prints one JSON line: {mb, requests, seconds, rss_start_mb, rss_max_mb, rss_end_mb}.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import Fastify from "fastify";
import OpenAI, { toStreamingFile } from "openai";
import { batchRoutes } from "../../producer/api/batches/plugin.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";
import { rssMb } from "./processes.ts";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const { values: args } = parseArgs({ options: { mb: { type: "string", default: "200" }, requests: { type: "string", default: "50000" }, serve: { type: "string" } } });

if (args.serve !== undefined) await serve(args.serve);
else await measure(Number(args.mb), Number(args.requests));

/** Child: the batch routes on their own, announcing their URL on stdout. */
async function serve(schema: string): Promise<void> {
  const pool = await createPool({ url: DATABASE_URL, poolSize: 4, schema });
  const app = Fastify();
  app.addHook("onRequest", async (req) => void ((req as typeof req & { tenant: string }).tenant = "bench"));
  await app.register(batchRoutes, { prefix: "/v1", pool });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  process.stdout.write(`${JSON.stringify({ url })}\n`);
  await once(process, "SIGTERM");
  await app.close();
  await pool.end();
}

async function measure(mb: number, requests: number): Promise<void> {
  const schema = `bench_upload_${process.pid}`;
  const admin = await createPool({ url: DATABASE_URL, poolSize: 1, schema });
  await migrate(admin);
  const child = spawn(process.execPath, ["--import", "tsx", new URL(import.meta.url).pathname, "--serve", schema], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [first] = await once(createInterface({ input: child.stdout! }), "line");
    const { url } = JSON.parse(String(first)) as { url: string };
    const pid = child.pid!;
    const rssStart = rssMb(pid);
    let rssMax = rssStart;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMb(pid))), 100);
    const t0 = performance.now();
    const openai = new OpenAI({ apiKey: "bench", baseURL: `${url}/v1`, maxRetries: 0, timeout: 30 * 60_000 });
    const file = await openai.files.create({ file: toStreamingFile(lines(mb * 1024 * 1024, requests), "big.jsonl"), purpose: "batch" });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const out = { mb: Math.round((file.bytes / 1024 / 1024) * 10) / 10, requests, seconds: Math.round(seconds * 10) / 10, rss_start_mb: Math.round(rssStart), rss_max_mb: Math.round(rssMax), rss_end_mb: Math.round(rssMb(pid)) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    child.kill("SIGTERM");
    await once(child, "exit");
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

/** `requests` chat lines padded to `bytes` in all, yielded 64 lines at a time. */
async function* lines(bytes: number, requests: number): AsyncGenerator<string> {
  const per = Math.floor(bytes / requests);
  let chunk = "";
  for (let i = 0; i < requests; i++) {
    const head = JSON.stringify({ custom_id: `r-${i}`, method: "POST", url: "/v1/chat/completions", body: { messages: [{ role: "user", content: "" }], max_tokens: 8 } });
    const pad = Math.max(1, per - head.length - 1);
    chunk += `${head.replace('"content":""', `"content":"${"x".repeat(pad)}"`)}\n`;
    if (i % 64 === 63) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk !== "") yield chunk;
}
