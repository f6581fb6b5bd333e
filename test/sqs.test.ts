/** SqsQueue against the real emulator (fauxqs, in-process on 127.0.0.1). Each test uses its own queue names. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { QueueError } from "../shared/errors.ts";
import { startEmulator, type RunningEmulator } from "../scripts/local/sqs-emulator.ts";
import { classifySqsError, MAX_MESSAGE_BYTES, SqsQueue, type ReceivedMessage } from "../shared/queue/sqs.ts";

let emulator: RunningEmulator;
let queue: SqsQueue;
let seq = 0;
const run = Date.now().toString(36);
const uniqueName = (label: string) => `t${run}-${label}-${seq++}`;
const settings = { visibilityTimeoutSeconds: 30, maxReceiveCount: 3, waitTimeSeconds: 0 };

before(async () => {
  emulator = await startEmulator();
  queue = new SqsQueue({ region: "us-east-1", endpoint: emulator.endpoint });
});

after(async () => {
  queue.close();
  await emulator.stop();
});

async function freshQueue(label: string, o: Partial<typeof settings> = {}) {
  return queue.ensureQueueWithDlq(uniqueName(label), { ...settings, ...o });
}

/** Receives until `count` messages arrived or a short poll comes back empty. */
async function drain(url: string, count: number, visibilityTimeoutSeconds = 30): Promise<ReceivedMessage[]> {
  const got: ReceivedMessage[] = [];
  while (got.length < count) {
    const batch = await queue.receive(url, { maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds });
    if (batch.length === 0) break;
    got.push(...batch);
  }
  return got;
}

describe("emulator", () => {
  test("binds loopback only", () => {
    assert.match(emulator.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(emulator.port > 0);
  });
});

describe("sendBatch", () => {
  test("25 entries with one over 1 MiB: 24 sent, one precise local failure", async () => {
    const { queueUrl } = await freshQueue("send");
    // Caller ids SQS would reject (slash, colon, non-ASCII, > 80 chars) must be mapped safely.
    const entries = Array.from({ length: 25 }, (_, i) => ({ id: `job/${i}:ä-${"x".repeat(i === 3 ? 90 : 0)}`, body: `body-${i}` }));
    entries[7] = { id: "too-big", body: "x".repeat(MAX_MESSAGE_BYTES + 1) };
    const { failed } = await queue.sendBatch(queueUrl, entries);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.id, "too-big");
    assert.equal(failed[0]!.code, "MessageTooLong");
    assert.equal(failed[0]!.senderFault, true);
    assert.match(failed[0]!.message, /1048577 bytes/);
    const got = await drain(queueUrl, 24);
    const expected = entries.filter((e) => e.id !== "too-big").map((e) => e.body).sort();
    assert.deepEqual(got.map((m) => m.body).sort(), expected);
  });

  test("batches stay under the 1 MiB per-call limit: two 600 KiB messages both go", async () => {
    const { queueUrl } = await freshQueue("big");
    const body = "y".repeat(600 * 1024);
    const { failed } = await queue.sendBatch(queueUrl, [{ id: "a", body }, { id: "b", body }]);
    assert.deepEqual(failed, []);
    assert.equal((await drain(queueUrl, 2)).length, 2);
  });

  test("an entry the server refuses fails alone, not its whole batch", async () => {
    const { queueUrl } = await freshQueue("refuse");
    // fauxqs refuses characters above U+FFFF (real SQS accepts them): the call fails whole, then is split.
    const entries = [{ id: "ok1", body: "fine" }, { id: "astral", body: "smile \u{1F642}" }, { id: "ok2", body: "fine too" }];
    const { failed } = await queue.sendBatch(queueUrl, entries);
    const received = await drain(queueUrl, 3);
    if (failed.length === 0) {
      assert.equal(received.length, 3); // a server that accepts them (real SQS)
    } else {
      assert.deepEqual(failed.map((f) => [f.id, f.senderFault]), [["astral", true]]);
      assert.deepEqual(received.map((m) => m.body).sort(), ["fine", "fine too"]);
    }
  });

  test("a body with characters SQS never accepts fails locally", async () => {
    const { queueUrl } = await freshQueue("chars");
    const { failed } = await queue.sendBatch(queueUrl, [{ id: "bad", body: "nul \u0000 here" }, { id: "good", body: "ok" }]);
    assert.deepEqual(failed.map((f) => [f.id, f.code]), [["bad", "InvalidMessageContents"]]);
    assert.equal((await drain(queueUrl, 1)).length, 1);
  });

  test("an aborted signal fails the entries as QUEUE_ABORTED (not sent, not a sender fault)", async () => {
    const { queueUrl } = await freshQueue("sendabort");
    const ac = new AbortController();
    ac.abort();
    const { failed } = await queue.sendBatch(queueUrl, [{ id: "a", body: "a" }, { id: "b", body: "b" }], ac.signal);
    assert.deepEqual(failed.map((f) => [f.id, f.code, f.senderFault]), [["a", "QUEUE_ABORTED", false], ["b", "QUEUE_ABORTED", false]]);
    assert.equal((await queue.depth(queueUrl)).visible, 0);
  });

  test("message attributes travel and come back as strings", async () => {
    const { queueUrl } = await freshQueue("attrs");
    await queue.sendBatch(queueUrl, [{ id: "a", body: "b", attributes: { failure_code: "JOB_INVALID" } }]);
    const [m] = await drain(queueUrl, 1);
    assert.deepEqual(m!.attributes, { failure_code: "JOB_INVALID" });
    assert.equal(m!.receiveCount, 1);
    assert.ok(m!.sentAt! > 0 && m!.firstReceivedAt! >= m!.sentAt!);
  });
});

describe("receive", () => {
  test("a long poll returns a message sent while it waits, well before its wait ends", async () => {
    const { queueUrl } = await freshQueue("longpoll");
    const started = performance.now();
    const pending = queue.receive(queueUrl, { maxMessages: 10, waitTimeSeconds: 5 });
    // The scenario itself: a producer sends a little after the consumer began waiting.
    setTimeout(() => void queue.sendBatch(queueUrl, [{ id: "late", body: "late" }]), 300);
    const got = await pending;
    const elapsed = performance.now() - started;
    assert.deepEqual(got.map((m) => m.body), ["late"]);
    assert.ok(elapsed >= 250 && elapsed < 2_500, `returned after ${elapsed.toFixed(0)} ms`);
  });

  test("aborting a long poll returns [] promptly; an aborted signal returns at once", async () => {
    const { queueUrl } = await freshQueue("abort");
    const ac = new AbortController();
    const started = performance.now();
    const pending = queue.receive(queueUrl, { maxMessages: 10, waitTimeSeconds: 20, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    assert.deepEqual(await pending, []);
    assert.ok(performance.now() - started < 1_500, `took ${(performance.now() - started).toFixed(0)} ms`);
    assert.deepEqual(await queue.receive(queueUrl, { maxMessages: 1, waitTimeSeconds: 20, signal: ac.signal }), []);
  });
});

describe("deleteBatch and changeVisibilityBatch", () => {
  test("deleteBatch removes 12 messages across two calls", async () => {
    const { queueUrl } = await freshQueue("delete");
    await queue.sendBatch(queueUrl, Array.from({ length: 12 }, (_, i) => ({ id: String(i), body: `m${i}` })));
    const got = await drain(queueUrl, 12);
    assert.equal(got.length, 12);
    const { failed } = await queue.deleteBatch(queueUrl, got.map((m, i) => ({ id: `d${i}`, receiptHandle: m.receiptHandle })));
    assert.deepEqual(failed, []);
    assert.deepEqual(await queue.depth(queueUrl), { visible: 0, inFlight: 0, delayed: 0 });
  });

  test("visibility 0 hands a message back; a longer one keeps it hidden; a bad handle fails alone", async () => {
    const { queueUrl } = await freshQueue("visibility");
    await queue.sendBatch(queueUrl, [{ id: "a", body: "back" }, { id: "b", body: "hidden" }]);
    const got = await drain(queueUrl, 2);
    const handle = (body: string) => got.find((m) => m.body === body)!.receiptHandle;
    const { failed } = await queue.changeVisibilityBatch(queueUrl, [
      { id: "a", receiptHandle: handle("back"), visibilityTimeoutSeconds: 0 },
      { id: "b", receiptHandle: handle("hidden"), visibilityTimeoutSeconds: 120 },
      { id: "x", receiptHandle: "not-a-receipt-handle", visibilityTimeoutSeconds: 0 },
    ]);
    assert.deepEqual(failed.map((f) => [f.id, f.code, f.senderFault]), [["x", "ReceiptHandleIsInvalid", true]]);
    const again = await drain(queueUrl, 2);
    assert.deepEqual(again.map((m) => [m.body, m.receiveCount]), [["back", 2]]);
  });
});

describe("dead-letter queue", () => {
  test("a message received maxReceiveCount times moves to the DLQ", async () => {
    const { queueUrl, dlqUrl } = await freshQueue("redrive", { maxReceiveCount: 2 });
    assert.equal(await queue.deadLetterQueueUrl(queueUrl), dlqUrl);
    await queue.sendBatch(queueUrl, [{ id: "p", body: "poison" }]);
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) counts.push(...(await drain(queueUrl, 1, 0)).map((m) => m.receiveCount));
    assert.deepEqual(counts, [1, 2]);
    const dead = await drain(dlqUrl, 1);
    assert.deepEqual(dead.map((m) => m.body), ["poison"]);
  });

  test("redrive moves DLQ messages back (filter respected, attributes kept, skipped ones released)", async () => {
    const { queueUrl, dlqUrl } = await freshQueue("back");
    await queue.sendBatch(dlqUrl, [
      { id: "1", body: "keep-1", attributes: { failure_code: "PROVIDER_UNAVAILABLE" } },
      { id: "2", body: "skip" },
      { id: "3", body: "keep-2" },
    ]);
    const moved = await queue.redrive(dlqUrl, queueUrl, { filter: (m) => m.body !== "skip" });
    assert.equal(moved, 2);
    const back = await drain(queueUrl, 2);
    assert.deepEqual(back.map((m) => m.body).sort(), ["keep-1", "keep-2"]);
    assert.deepEqual(back.find((m) => m.body === "keep-1")!.attributes, { failure_code: "PROVIDER_UNAVAILABLE" });
    assert.deepEqual((await drain(dlqUrl, 2)).map((m) => m.body), ["skip"]);
  });

  test("redrive stops at max", async () => {
    const { queueUrl, dlqUrl } = await freshQueue("max");
    await queue.sendBatch(dlqUrl, Array.from({ length: 5 }, (_, i) => ({ id: String(i), body: `d${i}` })));
    assert.equal(await queue.redrive(dlqUrl, queueUrl, { max: 3 }), 3);
    assert.equal((await queue.depth(dlqUrl)).visible, 2);
  });

  test("ensureQueueWithDlq is idempotent and updates settings", async () => {
    const name = uniqueName("ensure");
    const first = await queue.ensureQueueWithDlq(name, settings);
    const second = await queue.ensureQueueWithDlq(name, { ...settings, visibilityTimeoutSeconds: 45 });
    assert.deepEqual(second, first);
    assert.equal(await queue.queueUrl(name), first.queueUrl);
  });
});

describe("depth", () => {
  test("counts visible, in flight and delayed messages", async () => {
    const { queueUrl } = await freshQueue("depth");
    await queue.sendBatch(queueUrl, [
      { id: "1", body: "1" },
      { id: "2", body: "2" },
      { id: "3", body: "3" },
      { id: "4", body: "4", delaySeconds: 60 },
    ]);
    await queue.receive(queueUrl, { maxMessages: 1, waitTimeSeconds: 0, visibilityTimeoutSeconds: 60 });
    assert.deepEqual(await queue.depth(queueUrl), { visible: 2, inFlight: 1, delayed: 1 });
    await queue.purge(queueUrl);
    assert.equal((await queue.depth(queueUrl)).visible, 0);
  });
});

describe("errors", () => {
  test("a queue that does not exist is a terminal QueueDoesNotExist", async () => {
    const { queueUrl } = await freshQueue("gone");
    await queue.check(queueUrl);
    await queue.deleteQueue(queueUrl);
    await assert.rejects(queue.check(queueUrl), { code: "QueueDoesNotExist", retryable: false });
    await assert.rejects(queue.receive(queueUrl, { maxMessages: 1, waitTimeSeconds: 0 }), (err: unknown) => {
      assert.ok(err instanceof QueueError);
      assert.equal(err.code, "QueueDoesNotExist");
      assert.equal(err.retryable, false);
      return true;
    });
    await assert.rejects(queue.queueUrl(uniqueName("never")), { code: "QueueDoesNotExist", retryable: false });
  });

  test("an unreachable endpoint is retryable, for single and batch calls", async () => {
    const dead = await startEmulator();
    await dead.stop();
    const q = new SqsQueue({ region: "us-east-1", endpoint: dead.endpoint, batchRetries: 1 });
    try {
      await assert.rejects(q.depth(`${dead.endpoint}/000000000000/x`), { code: "QUEUE_UNREACHABLE", retryable: true });
      const { failed } = await q.sendBatch(`${dead.endpoint}/000000000000/x`, [{ id: "a", body: "a" }]);
      assert.deepEqual(failed.map((f) => [f.id, f.code, f.senderFault]), [["a", "QUEUE_UNREACHABLE", false]]);
    } finally {
      q.close();
    }
  });

  test("classifySqsError normalises the shapes the SDK produces", () => {
    const generic = Object.assign(new Error("bad"), { name: "AWS.SimpleQueueService.InvalidParameterValue", $fault: "client", $metadata: { httpStatusCode: 400 } });
    assert.deepEqual(pick(classifySqsError(generic)), ["InvalidParameterValue", false, 400]);
    const legacy = Object.assign(new Error("gone"), { name: "SQSServiceException", Code: "AWS.SimpleQueueService.NonExistentQueue", $metadata: { httpStatusCode: 400 } });
    assert.deepEqual(pick(classifySqsError(legacy)), ["QueueDoesNotExist", false, 400]);
    const throttled = Object.assign(new Error("slow"), { name: "RequestThrottled", $fault: "client", $metadata: { httpStatusCode: 403 } });
    assert.deepEqual(pick(classifySqsError(throttled)), ["RequestThrottled", true, 403]);
    const server = Object.assign(new Error("oops"), { name: "InternalError", $fault: "server", $metadata: { httpStatusCode: 500 } });
    assert.deepEqual(pick(classifySqsError(server)), ["InternalError", true, 500]);
    const aborted = Object.assign(new Error("aborted"), { name: "AbortError" });
    assert.deepEqual(pick(classifySqsError(aborted)), ["QUEUE_ABORTED", true, undefined]);
  });
});

function pick(e: QueueError): [string, boolean, number | undefined] {
  return [e.code, e.retryable, e.statusCode];
}
