/**
 * Settlement rules with a fake queue port and a fake clock: hand-backs on the last delivery never send an unrun
 * job to the DLQ, extensions stop at SQS's 12 h cap and on refusals for good, dead letters carry their reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { BatchFailure, ReceivedMessage, SendEntry } from "../shared/queue/sqs.ts";
import { Heartbeat, type HeldMessage } from "../worker/heartbeat.ts";
import { MAX_VISIBILITY_FROM_RECEIPT_MS, Settlement, type QueuePort } from "../worker/settlement.ts";
import { silentLog } from "./support/env.ts";

type Call =
  | { op: "delete"; queueUrl: string; receiptHandles: string[] }
  | { op: "visibility"; queueUrl: string; entries: { receiptHandle: string; visibilityTimeoutSeconds: number }[] }
  | { op: "send"; queueUrl: string; entries: SendEntry[] };

class FakeQueue implements QueuePort {
  readonly calls: Call[] = [];
  /** Per receipt handle, the failure code a visibility change gets. */
  visibilityFailures = new Map<string, { code: string; senderFault: boolean }>();
  sendFails = false;
  dlqUrl: string | undefined = "dlq";

  async deleteBatch(queueUrl: string, entries: { id: string; receiptHandle: string }[]) {
    this.calls.push({ op: "delete", queueUrl, receiptHandles: entries.map((e) => e.receiptHandle) });
    return { failed: [] };
  }
  async changeVisibilityBatch(queueUrl: string, entries: { id: string; receiptHandle: string; visibilityTimeoutSeconds: number }[]) {
    this.calls.push({ op: "visibility", queueUrl, entries: entries.map(({ receiptHandle, visibilityTimeoutSeconds }) => ({ receiptHandle, visibilityTimeoutSeconds })) });
    const failed: BatchFailure[] = entries.flatMap((e) => {
      const f = this.visibilityFailures.get(e.receiptHandle);
      return f ? [{ id: e.id, code: f.code, message: f.code, senderFault: f.senderFault }] : [];
    });
    return { failed };
  }
  async sendBatch(queueUrl: string, entries: SendEntry[]) {
    this.calls.push({ op: "send", queueUrl, entries });
    return { failed: this.sendFails ? entries.map((e) => ({ id: e.id, code: "InternalError", message: "down", senderFault: false })) : [] };
  }
  async deadLetterQueueUrl() {
    return this.dlqUrl;
  }
}

const message = (receiveCount: number, receiptHandle = `rh-${receiveCount}`): ReceivedMessage => ({
  queueUrl: "main",
  messageId: `m-${receiptHandle}`,
  receiptHandle,
  body: '{"v":1,"id":"j1"}',
  receiveCount,
  attributes: { traceparent: "00-abc" },
});

function setup(o: { now?: () => number } = {}) {
  const queue = new FakeQueue();
  const settlement = new Settlement({ queue, maxReceiveCount: 3, visibilityTimeoutSeconds: 120, ackFlushMs: 0, log: silentLog, now: o.now });
  return { queue, settlement };
}

test("hand-back before the last delivery: a visibility change, nothing sent", async () => {
  const { queue, settlement } = setup();
  await settlement.handBack(message(2), 7);
  assert.deepEqual(queue.calls, [{ op: "visibility", queueUrl: "main", entries: [{ receiptHandle: "rh-2", visibilityTimeoutSeconds: 7 }] }]);
});

test("hand-back on the last delivery: a fresh copy with the delay goes to the queue and the spent message is deleted", async () => {
  const { queue, settlement } = setup();
  await settlement.handBack(message(3), 7);
  await settlement.drain();
  assert.deepEqual(
    queue.calls.map((c) => c.op),
    ["send", "delete"],
  );
  const send = queue.calls[0] as Extract<Call, { op: "send" }>;
  assert.equal(send.queueUrl, "main");
  assert.equal(send.entries[0]!.body, message(3).body);
  assert.equal(send.entries[0]!.delaySeconds, 7);
  assert.deepEqual(send.entries[0]!.attributes, { traceparent: "00-abc" });
  assert.deepEqual((queue.calls[1] as Extract<Call, { op: "delete" }>).receiptHandles, ["rh-3"]);
});

test("hand-back with freshCopy: a copy is sent and the message deleted on any delivery", async () => {
  const { queue, settlement } = setup();
  assert.equal(await settlement.handBack(message(1), 5, { freshCopy: true }), true);
  await settlement.drain();
  assert.deepEqual(queue.calls.map((c) => c.op), ["send", "delete"]);
  assert.equal((queue.calls[0] as Extract<Call, { op: "send" }>).entries[0]!.delaySeconds, 5);
  assert.deepEqual((queue.calls[1] as Extract<Call, { op: "delete" }>).receiptHandles, ["rh-1"]);
});

test("hand-back on the last delivery when the copy cannot be sent: the original is handed back, not deleted", async () => {
  const { queue, settlement } = setup();
  queue.sendFails = true;
  await settlement.handBack(message(3), 0);
  await settlement.drain();
  assert.deepEqual(
    queue.calls.map((c) => c.op),
    ["send", "visibility"],
  );
});

test("dead-letter: the DLQ copy carries the reason, then the original is deleted; no DLQ: dropped and deleted", async () => {
  const { queue, settlement } = setup();
  await settlement.deadLetter(message(1), { code: "JOB_ID_CONFLICT", message: "id belongs to another tenant" });
  await settlement.drain();
  const send = queue.calls[0] as Extract<Call, { op: "send" }>;
  assert.equal(send.queueUrl, "dlq");
  assert.equal(send.entries[0]!.attributes?.failure_code, "JOB_ID_CONFLICT");
  assert.equal(send.entries[0]!.attributes?.source_message_id, "m-rh-1");
  assert.equal(send.entries[0]!.attributes?.traceparent, "00-abc", "the original's attributes travel with it");
  assert.equal(queue.calls[1]!.op, "delete");

  const none = setup();
  none.queue.dlqUrl = undefined;
  await none.settlement.deadLetter(message(1), { code: "JOB_NOT_JSON", message: "x" });
  await none.settlement.drain();
  assert.deepEqual(
    none.queue.calls.map((c) => c.op),
    ["delete"],
  );
});

test("extend: never asks past 12 h from receipt; at the cap the message is lost, not extended", async () => {
  let now = 1_000_000;
  const { queue, settlement } = setup({ now: () => now });
  const held = { message: message(1), receivedAt: now };
  now += MAX_VISIBILITY_FROM_RECEIPT_MS - 90_000; // 1.5 min before the cap
  const near = await settlement.extend([held]);
  assert.deepEqual(near.extended, [held]);
  const asked = (queue.calls[0] as Extract<Call, { op: "visibility" }>).entries[0]!.visibilityTimeoutSeconds;
  assert.ok(asked > 0 && asked <= 30, `asked ${asked} s, within what is left before the cap`);
  assert.ok(held.receivedAt + MAX_VISIBILITY_FROM_RECEIPT_MS >= now + asked * 1000);
  now += 60_000;
  const at = await settlement.extend([held]);
  assert.deepEqual(at.lost, [held]);
  assert.equal(queue.calls.length, 1, "no call once the cap is reached");
});

test("extend: a refusal for good is lost, a transient failure is retried", async () => {
  const { queue, settlement } = setup();
  queue.visibilityFailures.set("stale", { code: "ReceiptHandleIsInvalid", senderFault: true });
  queue.visibilityFailures.set("gone", { code: "MessageNotInflight", senderFault: true });
  queue.visibilityFailures.set("slow", { code: "InternalError", senderFault: false });
  const held = ["ok", "stale", "gone", "slow"].map((rh) => ({ message: message(1, rh), receivedAt: Date.now() }));
  const r = await settlement.extend(held);
  assert.deepEqual(r.extended.map((h) => h.message.receiptHandle), ["ok"]);
  assert.deepEqual(r.lost.map((h) => h.message.receiptHandle), ["stale", "gone"]);
  assert.deepEqual(r.failed.map((h) => h.message.receiptHandle), ["slow"]);
});

test("heartbeat: a lost message stops its job and its lease is no longer extended; the others go on", async () => {
  let now = 0;
  const lostHandles = new Set(["stale"]);
  const extendedLeases: string[][] = [];
  const heartbeat = new Heartbeat({
    settlement: {
      extend: async <T extends { message: ReceivedMessage }>(held: T[]) => ({
        extended: held.filter((h) => !lostHandles.has(h.message.receiptHandle)),
        lost: held.filter((h) => lostHandles.has(h.message.receiptHandle)),
        failed: [],
      }),
    },
    intervalMs: 1_000,
    visibilityTimeoutSeconds: 30,
    extendLeases: async (ids) => void extendedLeases.push(ids),
    log: silentLog,
    now: () => now,
  });
  const a: HeldMessage = heartbeat.track(message(1, "ok"));
  const b: HeldMessage = heartbeat.track(message(1, "stale"));
  a.jobId = "job-a";
  b.jobId = "job-b";
  now = 1_500;
  await heartbeat.beat();
  assert.equal(b.lost.signal.aborted, true, "the job on a lost message is told to stop");
  assert.equal(a.lost.signal.aborted, false);
  assert.deepEqual(extendedLeases, [["job-a"]]);
  now = 3_000;
  await heartbeat.beat();
  assert.deepEqual(extendedLeases, [["job-a"], ["job-a"]], "a lost message is never extended again");
});
