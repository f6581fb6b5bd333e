/** An in-process Worker over real services, with test-sized timings. */
import { VllmClient } from "../../shared/providers/vllm.ts";
import type { ResultsCache } from "../../shared/store/results-cache.ts";
import type { JobStore } from "../../shared/store/jobs.ts";
import { Worker, type WorkerOptions } from "../../worker/worker.ts";
import { silentLog, type QueueFixture } from "./env.ts";

export function testWorker(
  q: QueueFixture,
  store: JobStore,
  vllmUrl: string,
  o: Partial<WorkerOptions> & { cache?: ResultsCache; timeoutMs?: number } = {},
): { worker: Worker; provider: VllmClient; stop(): Promise<void> } {
  const provider = new VllmClient({ baseUrl: vllmUrl, model: "meta-llama/Llama-3.1-8B-Instruct", timeoutMs: o.timeoutMs ?? 30_000, connections: Math.max(64, o.concurrency ?? 32) });
  const worker = new Worker({
    queue: q.queue,
    queueUrls: [q.queueUrl],
    store,
    provider,
    concurrency: 32,
    receiveBatchSize: 10,
    receiveParallelism: 2,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    heartbeatIntervalMs: 10_000,
    drainDeadlineMs: 10_000,
    jobDefaultTtlSeconds: 0,
    ackFlushMs: 10,
    log: silentLog,
    ...o,
  });
  worker.start();
  return {
    worker,
    provider,
    stop: async () => {
      await worker.stop();
      await provider.close();
    },
  };
}
