/**
 * `make serve`: the local stack in the foreground (scripts/local/stack.ts: Postgres, Redis when reachable, the SQS
 * emulator with a queue and its DLQ, the vLLM, Ollama and Gemini simulators, two workers) plus the Results API.
 * When everything is ready it prints one JSON line: api, api_key (a new key for tenant `demo`), database_url,
 * queue_url, dlq_url, sqs_endpoint, and each worker's ops URL. Ctrl-C or SIGTERM drains the workers, stops
 * everything and exits 0. Settings from the environment win (API_PORT, DATABASE_URL, VLLM_URL, ...).
 */
import { resolve } from "node:path";
import { runCleanup, type CleanupStep } from "../shared/shutdown.ts";
import { withoutUserInfo } from "../shared/userinfo.ts";
import { ApiKeyStore } from "../producer/api/api-keys.ts";
import { spawnApi } from "./local/api-process.ts";
import { startLocalStack } from "./local/stack.ts";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const WORKERS = Number(process.env.SERVE_WORKERS ?? 2);
// Progress goes to stderr: stdout carries only the JSON line, for scripts that start the stack and read it.
const say = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const cleanup: CleanupStep[] = [];
  const stopped = new Promise<string>((res) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => res(signal));
  });
  let code = 0;
  try {
    const logDir = resolve(ROOT, "out/serve-logs");
    const stack = await startLocalStack({ env: process.env, workers: WORKERS, queuePrefix: "serve", logDir, say }, cleanup);
    const api = spawnApi(
      {
        ...stack.workerEnv,
        API_HOST: process.env.API_HOST ?? "127.0.0.1",
        API_PORT: process.env.API_PORT ?? "8080",
        LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
      },
      logDir,
    );
    // Stopped first of all (cleanup runs last-in first): no new submits while the workers drain.
    cleanup.push(async () => {
      api.child.kill("SIGTERM");
      await api.exited;
    });
    const apiUrl = await api.ready;
    const { key } = await new ApiKeyStore(stack.pool).create("demo");
    say(`api: ${apiUrl} (tenant demo; logs in out/serve-logs/); Ctrl-C stops everything`);
    process.stdout.write(
      `${JSON.stringify({
        api: apiUrl,
        api_key: key,
        database_url: stack.databaseUrl,
        queue_url: stack.queueUrl,
        dlq_url: stack.dlqUrl ?? null,
        sqs_endpoint: stack.endpoint ?? null,
        redis_url: stack.redisUrl === undefined ? null : withoutUserInfo(stack.redisUrl),
        workers: stack.opsUrls,
      })}\n`,
    );
    const exitedEarly = Promise.race([api.exited.then(() => "api"), ...stack.workers.map((w) => w.exited.then(() => w.name))]);
    const why = await Promise.race([stopped, exitedEarly.then((name) => `exit of ${name}`)]);
    say(`stopping (${why}): draining workers`);
    if (why.startsWith("exit of")) code = 1;
  } catch (err) {
    say(`serve failed: ${(err as Error).stack ?? String(err)}`);
    code = 1;
  } finally {
    await runCleanup(cleanup, (err) => say(`cleanup: ${(err as Error).message}`));
  }
  process.exit(code);
}

void main();
