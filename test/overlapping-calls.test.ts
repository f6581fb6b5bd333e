/** The fault suite's overlap audit over a simulator request log. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { overlappingCallIds } from "../scripts/fleet/overlapping-calls.ts";

const call = (requestId: string | undefined, startedAt: number, endedAt: number) => ({ requestId, startedAt, endedAt });

test("two calls of one job in flight at once count once per job; other jobs and id-less calls do not", () => {
  const ids = overlappingCallIds([
    call("a", 0, 10),
    call("a", 5, 20), // overlaps the first
    call("a", 8, 9), // a third overlapping call: still one job
    call("b", 0, 10),
    call("c", 3, 4),
    call(undefined, 0, 100),
    call(undefined, 1, 2),
    call("", 0, 100),
    call("", 1, 2),
  ]);
  assert.deepEqual(ids, ["a"]);
});

test("sequential calls (a retry after the first ended, or exactly when it ended) do not overlap", () => {
  assert.deepEqual(overlappingCallIds([call("a", 0, 10), call("a", 10, 20), call("a", 25, 30)]), []);
});

test("order of the log does not matter; a long first call covers a later one that starts after a short one", () => {
  const ids = overlappingCallIds([call("x", 50, 60), call("x", 0, 100), call("x", 10, 20), call("y", 30, 40), call("y", 0, 31)]);
  assert.deepEqual(ids, ["x", "y"]);
  // A long first call, then a short one inside it and a third after the short one ended but before the long one did.
  assert.deepEqual(overlappingCallIds([call("z", 0, 100), call("z", 150, 160)]), []);
  assert.deepEqual(overlappingCallIds([call("z", 0, 100), call("z", 99.5, 160)]), ["z"]);
});
