/** The micro-batcher's linger rule: a lone item after a quiet spell goes at once; under load items wait to batch. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MicroBatcher } from "../worker/micro-batcher.ts";

const turn = () => new Promise((r) => setImmediate(r));

test("after a quiet spell the first items go at once (with those added in the same turn); the next ones linger", { timeout: 5_000 }, async () => {
  const calls: number[][] = [];
  const b = new MicroBatcher<number, number>({ run: async (items) => (calls.push(items), items.map((x) => x * 10)), maxBatch: 100, lingerMs: 60_000 });
  assert.deepEqual(await Promise.all([b.add(1), b.add(2)]), [10, 20], "no 60 s linger for an idle batcher");
  assert.deepEqual(calls, [[1, 2]]);
  const third = b.add(3);
  await turn();
  await turn();
  assert.deepEqual(calls, [[1, 2]], "a batch was just sent: the next item lingers");
  const fourth = b.add(4);
  b.flush();
  assert.deepEqual(await Promise.all([third, fourth]), [30, 40]);
  assert.deepEqual(calls, [[1, 2], [3, 4]]);
});

test("a batch in flight makes the next items linger; maxBatch still sends at once", async () => {
  const calls: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new MicroBatcher<number, void>({ run: async (items) => { calls.push(items); if (items[0] === 1) await gate; }, maxBatch: 3, lingerMs: 60_000 });
  const first = b.add(1);
  await turn();
  assert.deepEqual(calls, [[1]]);
  const rest = [b.add(2), b.add(3)];
  await turn();
  assert.deepEqual(calls, [[1]], "lingering while the first batch runs");
  rest.push(b.add(4));
  assert.deepEqual(calls, [[1], [2, 3, 4]], "a full batch goes at once");
  release();
  await Promise.all([first, ...rest]);
  await b.drain();
});
