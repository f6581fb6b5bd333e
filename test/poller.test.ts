/**
 * The poller: weighted shares between priority classes (no class starves), interrupt() ending long polls at
 * once, and a queue error retrying cannot fix stopping intake and reporting it. Against the SQS emulator; the
 * selection-order tests use a small fake of the one port the poller needs (`receive`).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Poller, type PollerOptions } from "../worker/poller.ts";
import { Capacity } from "../worker/capacity.ts";
import { WeightedRoundRobin, defaultClassWeights } from "../worker/weighted-round-robin.ts";
import type { ReceivedMessage } from "../shared/queue/sqs.ts";
import { QueueError } from "../shared/errors.ts";
import { queueFixture, silentLog, stopEmulator, until } from "./support/env.ts";

after(() => stopEmulator());

/**
 * A poller whose handler frees each message's slot at once and counts messages per queue; with `stopAt`, it
 * stops itself once that many arrived (one loop: no receive after that).
 */
function countingPoller(o: Partial<PollerOptions> & Pick<PollerOptions, "queue" | "queueUrls">, stopAt = Infinity) {
  const capacity = new Capacity(100, 100);
  const received = new Map<string, number>();
  const stop = new AbortController();
  const poller = new Poller({
    capacity,
    batchSize: 10,
    parallelism: 1,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 300,
    paused: () => false,
    waitUnpaused: async () => undefined,
    onMessages: (messages) => {
      for (const m of messages) received.set(m.queueUrl, (received.get(m.queueUrl) ?? 0) + 1);
      capacity.release(messages.length);
      if (total() >= stopAt) stop.abort();
    },
    log: silentLog,
    ...o,
  });
  const total = () => [...received.values()].reduce((a, b) => a + b, 0);
  return { poller, received, total, stop, run: () => poller.run(stop.signal) };
}

test("smooth weighted round robin: exact shares per cycle, spread out, deterministic", () => {
  assert.deepEqual(defaultClassWeights(3), [4, 2, 1]);
  assert.deepEqual(defaultClassWeights(1), [1]);
  const rr = new WeightedRoundRobin([4, 2, 1]);
  const picks = Array.from({ length: 14 }, () => rr.next());
  assert.deepEqual(picks, [0, 1, 0, 2, 0, 1, 0, 0, 1, 0, 2, 0, 1, 0]);
  assert.throws(() => new WeightedRoundRobin([1, 0]), RangeError);
});

test("three non-empty classes on the emulator share receives 4:2:1 (default weights); none starves", async () => {
  const classes = [await queueFixture(), await queueFixture(), await queueFixture()];
  for (const c of classes) {
    await c.queue.sendBatch(c.queueUrl, Array.from({ length: 250 }, (_, i) => ({ id: String(i), body: `m${i}` })));
  }
  const urls = classes.map((c) => c.queueUrl);
  // 350 messages: 200/100/50 at 4:2:1, so no class runs dry before the end.
  const { received, total, run } = countingPoller({ queue: classes[0]!.queue, queueUrls: urls }, 350);
  await run();
  const shares = urls.map((u) => (received.get(u) ?? 0) / total());
  const expected = [4 / 7, 2 / 7, 1 / 7];
  shares.forEach((share, i) => assert.ok(Math.abs(share - expected[i]!) < 0.05, `class ${i}: share ${share.toFixed(3)}, expected ${expected[i]!.toFixed(3)}`));
});

/** A fake queue: in-memory messages per URL, `receive` as the poller uses it; records the URLs asked, in order. */
function fakeQueue(counts: Record<string, number>) {
  const asked: string[] = [];
  const left = { ...counts };
  const queue: PollerOptions["queue"] = {
    receive: async (queueUrl, o) => {
      asked.push(queueUrl);
      const n = Math.min(o.maxMessages, left[queueUrl] ?? 0);
      left[queueUrl] = (left[queueUrl] ?? 0) - n;
      await new Promise((r) => setImmediate(r)); // a real receive yields to the event loop too
      return Array.from({ length: n }, (_, i): ReceivedMessage => ({ queueUrl, messageId: `${queueUrl}-${left[queueUrl]! + i}`, receiptHandle: "r", body: "", receiveCount: 1 }));
    },
  };
  return { queue, asked };
}

test("configured weights set the shares; an empty chosen class falls through to the others in priority order", async () => {
  const even = fakeQueue({ a: 1000, b: 1000, c: 1000 });
  const p1 = countingPoller({ queue: even.queue, queueUrls: ["a", "b", "c"], weights: [1, 1, 1] }, 300);
  await p1.run();
  assert.deepEqual(["a", "b", "c"].map((u) => p1.received.get(u)), [100, 100, 100]);

  // The highest class is empty: its turns go to the next class in priority order, not to the lowest.
  const gap = fakeQueue({ a: 0, b: 1000, c: 1000 });
  const p2 = countingPoller({ queue: gap.queue, queueUrls: ["a", "b", "c"] }, 700);
  await p2.run();
  assert.deepEqual(["b", "c"].map((u) => p2.received.get(u)), [600, 100]);
  assert.deepEqual(gap.asked.slice(0, 6), ["a", "b", "b", "a", "b", "c"], "start class, then the others highest first");

  assert.throws(() => countingPoller({ queue: gap.queue, queueUrls: ["a", "b"], weights: [1] }), RangeError);
});

test("interrupt() ends every long poll in flight at once: no messages, no failure, polling goes on", async () => {
  const q = await queueFixture();
  let started = 0;
  const outcomes: string[] = [];
  const queue: PollerOptions["queue"] = {
    receive: (url, o) => {
      started += 1;
      return q.queue.receive(url, o).then(
        (got) => (outcomes.push(`ok:${got.length}`), got),
        (err: unknown) => (outcomes.push("failed"), Promise.reject(err)),
      );
    },
  };
  const { poller, stop, run } = countingPoller({ queue, queueUrls: [q.queueUrl], waitTimeSeconds: 20, parallelism: 2 });
  const running = run();
  try {
    await until(() => started === 2, "two long polls in flight");
    const at = Date.now();
    poller.interrupt();
    await until(() => started === 4, "both loops polling again", 15_000);
    assert.ok(Date.now() - at < 10_000, "interrupted well before the 20 s long poll would end");
    assert.deepEqual(outcomes, ["ok:0", "ok:0"]);
  } finally {
    stop.abort();
    await running;
    q.queue.close();
  }
});

test("a queue deleted while polling stops intake and is reported once through onFatal", async () => {
  const q = await queueFixture();
  const fatal: { err: Error; queueUrl: string }[] = [];
  const { stop, run } = countingPoller({
    queue: q.queue,
    queueUrls: [q.queueUrl],
    parallelism: 3,
    onFatal: (err, queueUrl) => fatal.push({ err, queueUrl }),
  });
  const running = run();
  try {
    await q.queue.deleteQueue(q.queueUrl);
    await until(() => fatal.length > 0, "onFatal", 20_000);
    await running; // every loop ends by itself: nothing aborted `stop`
    assert.equal(stop.signal.aborted, false);
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]!.queueUrl, q.queueUrl);
    assert.equal((fatal[0]!.err as { code?: string }).code, "QueueDoesNotExist");
  } finally {
    stop.abort();
    await running;
    q.queue.close();
  }
});

test("a failure the server did not answer with a 4xx is backed off and retried, not fatal", async () => {
  let calls = 0;
  const fatal: string[] = [];
  const queue: PollerOptions["queue"] = {
    receive: async (queueUrl) => {
      calls += 1;
      if (calls === 1) throw new QueueError("QUEUE_UNKNOWN", "SQS QUEUE_UNKNOWN: odd local failure", false);
      return [{ queueUrl, messageId: "m", receiptHandle: "r", body: "", receiveCount: 1 }];
    },
  };
  const { run, received } = countingPoller({ queue, queueUrls: ["a"], onFatal: (_, url) => fatal.push(url) }, 1);
  await run();
  assert.equal(received.get("a"), 1);
  assert.deepEqual(fatal, []);
});
