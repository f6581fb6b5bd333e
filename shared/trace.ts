/**
 * The correlation id that follows a job: a W3C Trace Context `traceparent` (version-traceid-spanid-flags). The
 * producer puts one on every SQS message as the `traceparent` message attribute (the caller's, or a fresh one), the
 * worker reads it, logs its trace id on every line about the job, sends it to the provider as the `traceparent`
 * header (same trace id, a new span id per call) and stores the trace id in the job's record. The message body
 * never carries it: the body contract stays as it is.
 */
import { randomBytes } from "node:crypto";

/** The SQS message attribute and the HTTP header, named as W3C names the header. */
export const TRACEPARENT = "traceparent";

export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** The sender's span: 16 lowercase hex digits, not all zero. */
  spanId: string;
  /** Two hex digits; bit 0 = sampled. */
  flags: string;
}

// Version 00 is exactly 55 characters; a later version may append fields after a dash, which we ignore (as W3C asks).
const TRACEPARENT_PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** The context a `traceparent` value carries; undefined when it is absent or malformed (never throws). */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  if (value === undefined || value.length < 55 || value.length > 512) return undefined;
  const m = TRACEPARENT_PATTERN.exec(value);
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags };
}

/** A new trace (sampled), for a job whose sender gave none. */
export function newTrace(): TraceContext {
  return { traceId: nonZeroHex(16), spanId: nonZeroHex(8), flags: "01" };
}

/** The same trace with a new span: what this process sends on (a message, a provider call). */
export function childSpan(parent: TraceContext): TraceContext {
  return { traceId: parent.traceId, spanId: nonZeroHex(8), flags: parent.flags };
}

/** The context of `value`, or a fresh trace when it is missing or invalid. */
export function traceOrNew(value: string | undefined): TraceContext {
  return parseTraceparent(value) ?? newTrace();
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

function nonZeroHex(bytes: number): string {
  for (;;) {
    const hex = randomBytes(bytes).toString("hex");
    if (!/^0+$/.test(hex)) return hex;
  }
}
