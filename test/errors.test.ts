/**
 * One transient-error classifier (shared/errors.ts) behind the four adapters that classify failures: the queue,
 * the store, the HTTP providers and Auto Scaling agree on what a dropped connection or AWS throttling is.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { isTransientAwsError, isTransientNetworkError } from "../shared/errors.ts";
import { classifySqsError } from "../shared/queue/sqs.ts";
import { toStoreError } from "../shared/store/store-errors.ts";
import { toProviderError } from "../shared/providers/http-errors.ts";
import { toAutoScalingError } from "../worker/auto-scaling.ts";

const NETWORK_CODES = [
  "ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN",
  "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED", "UND_ERR_DESTROYED",
];

const socketError = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:443`), { code });

test("every transient socket code is transient for the queue, the store, the providers and Auto Scaling alike", () => {
  for (const code of NETWORK_CODES) {
    const err = socketError(code);
    assert.ok(isTransientNetworkError(err), code);
    assert.ok(isTransientNetworkError(new Error("wrapped", { cause: err })), `${code} as a cause`);
    assert.ok(isTransientNetworkError(new AggregateError([new Error("x"), err])), `${code} in an AggregateError`);
    const sqs = classifySqsError(err);
    assert.deepEqual([sqs.code, sqs.retryable], ["QUEUE_UNREACHABLE", true], `sqs ${code}`);
    const store = toStoreError(err, "op");
    assert.deepEqual([store.code, store.retryable], ["STORE_UNAVAILABLE", true], `store ${code}`);
    assert.equal(toProviderError({ kind: "network", error: err }, { provider: "p", operation: "chat" }).retryable, true, `provider ${code}`);
    assert.equal(toAutoScalingError("Describe", err).retryable, true, `autoscaling ${code}`);
  }
  for (const other of ["EACCES", "ERR_INVALID_ARG_TYPE", "22P02", undefined]) {
    assert.equal(isTransientNetworkError(Object.assign(new Error("x"), { code: other })), false, String(other));
  }
});

test("AWS throttling and server faults are transient for SQS and Auto Scaling alike; client faults are not", () => {
  const aws = (name: string, status: number, extra: object = {}) =>
    Object.assign(new Error(name), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status }, ...extra });
  const transient = [
    aws("ThrottlingException", 400),
    aws("AWS.SimpleQueueService.RequestThrottled", 403),
    aws("ResourceContentionFault", 500),
    aws("ResourceContentionFault", 400),
    aws("SomethingThrottled", 400),
    aws("TooManyRequestsException", 429),
    aws("InternalFailure", 500),
    aws("LimitExceeded", 400, { $retryable: { throttling: true } }),
  ];
  for (const err of transient) {
    assert.ok(isTransientAwsError(err), err.name);
    assert.equal(classifySqsError(err).retryable, true, `sqs ${err.name}`);
    assert.equal(toAutoScalingError("Describe", err).retryable, true, `autoscaling ${err.name}`);
  }
  for (const err of [aws("AccessDenied", 403), aws("ValidationError", 400), aws("AWS.SimpleQueueService.NonExistentQueue", 400)]) {
    assert.equal(isTransientAwsError(err), false, err.name);
    assert.equal(classifySqsError(err).retryable, false, `sqs ${err.name}`);
    assert.equal(toAutoScalingError("Describe", err).retryable, false, `autoscaling ${err.name}`);
  }
});
