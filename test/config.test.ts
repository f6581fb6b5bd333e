import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULTS, loadConfig } from "../shared/config.ts";
import { ConfigError } from "../shared/errors.ts";

test("defaults parse and agree with the shared DEFAULTS", () => {
  const c = loadConfig({});
  assert.equal(c.queue.visibilityTimeoutSeconds, DEFAULTS.visibilityTimeoutSeconds);
  assert.equal(c.queue.waitTimeSeconds, 20);
  assert.equal(c.worker.concurrency, undefined);
  assert.equal(c.vllm.maxNumSeqs, 1024);
});

test("one error names every bad variable and never echoes a value", () => {
  const secret = "postgres-password-should-not-leak";
  assert.throws(
    () => loadConfig({ SQS_WAIT_TIME_SECONDS: "25", DATABASE_URL: `mysql://u:${secret}@h/db`, VLLM_URL: "not a url", RECEIVE_BATCH_SIZE: "11" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const name of ["SQS_WAIT_TIME_SECONDS", "DATABASE_URL", "VLLM_URL", "RECEIVE_BATCH_SIZE"]) assert.match(err.message, new RegExp(name));
      assert.doesNotMatch(err.message, new RegExp(secret));
      return true;
    },
  );
});

test("cross-field rules: heartbeat under half the visibility, drain under the lifecycle hook", () => {
  assert.throws(() => loadConfig({ SQS_VISIBILITY_TIMEOUT_SECONDS: "30", HEARTBEAT_INTERVAL_MS: "20000" }), /HEARTBEAT_INTERVAL_MS/);
  assert.throws(() => loadConfig({ DRAIN_DEADLINE_MS: String(DEFAULTS.lifecycleHookTimeoutSeconds * 1000) }), /DRAIN_DEADLINE_MS/);
  assert.equal(loadConfig({ QUEUE_URLS: "http://a/1, http://a/2" }).queue.urls?.length, 2);
});
