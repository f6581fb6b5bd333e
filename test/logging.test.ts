/**
 * What a log line may not carry, checked on the logger's real output: personal data in free text (pii.ts),
 * credentials in URLs (userinfo.ts), secrets by key (pino redact + the scrub), and the W3C traceparent parser.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createLogger, type LogFormat } from "../shared/logger.ts";
import { luhn, maskPii } from "../shared/pii.ts";
import { childSpan, formatTraceparent, newTrace, parseTraceparent, traceOrNew } from "../shared/trace.ts";
import { stripUserInfo, withoutUserInfo } from "../shared/userinfo.ts";

/** A logger writing into an array, and the lines parsed (JSON format). */
function capture(level = "trace", o: { format?: LogFormat; isTty?: boolean } = { format: "json" }) {
  const lines: string[] = [];
  const log = createLogger(level, "test", { ...o, destination: { write: (s: string) => void lines.push(s) } });
  return { log, lines, json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), text: () => lines.join("") };
}

describe("maskPii", () => {
  const masked: [string, string][] = [
    ["write to alice.smith+lists@example.co.uk today", "write to [email] today"],
    ["call +44 20 7946 0958 or +1 (415) 555-2671", "call [phone] or [phone]"],
    ["+33 1 23 45 67 89, +491701234567", "[phone], [phone]"],
    ["US forms (415) 555-2671, 415-555-2671 and 415.555.2671", "US forms [phone], [phone] and [phone]"],
    ["card 4111 1111 1111 1111 exp 12/29", "card [card] exp 12/29"],
    ["card 4111-1111-1111-1111", "card [card]"],
    ["card:4111111111111111.", "card:[card]."],
    ["amex 378282246310005", "amex [card]"],
    ["ssn 123-45-6789", "ssn [national-id]"],
    ["NI number AB 12 34 56 C and QQ123456C", "NI number [national-id] and QQ123456C"],
    ["from 192.168.1.20 via 10.0.0.1", "from [ip] via [ip]"],
    ["v6 2001:db8::8a2e:370:7334 and fe80::1 and ::ffff:192.0.2.1", "v6 [ip] and [ip] and [ip]"],
    ["ends a sentence: fe80::1. Or 10.0.0.1.", "ends a sentence: [ip]. Or [ip]."],
    ["😀 mail bob@example.com\u0000 now 🎉 +44 20 7946 0958", "😀 mail [email]\u0000 now 🎉 [phone]"],
  ];
  for (const [input, want] of masked) test(`masks: ${JSON.stringify(input)}`, () => assert.equal(maskPii(input), want));

  test("a 16-digit number that fails the Luhn check is left alone", () => {
    for (const n of ["4111 1111 1111 1112", "1234567812345678", "4111-1111-1111-1113"]) {
      assert.equal(luhn(n), false, `${n} must really fail Luhn for this case to mean anything`);
      assert.equal(maskPii(`order ${n} shipped`), `order ${n} shipped`);
    }
    assert.equal(luhn("4111 1111 1111 1111"), true);
  });

  test("ordinary text, ids, times and versions are not masked", () => {
    for (const s of [
      "worker started",
      "gave up after 5 deliveries: HTTP 503",
      "2026-12-03T17:49:01.123Z at 12:30:45",
      "job 01a207f0-b1d1-738e-8142-b25ec45c0677 tenant acme",
      "invalid area 000-12-3456 and 666-12-3456",
      "999.1.1.1 is not an address, nor is 1.2.3",
      "std::vector and a::b",
      "42 tokens, 1234 ms",
    ]) {
      assert.equal(maskPii(s), s);
    }
  });
});

describe("stripUserInfo / withoutUserInfo", () => {
  test("every scheme's user:password@ goes, the rest stays", () => {
    assert.equal(stripUserInfo("connect postgres://app:s3cr3t@db.internal:5432/jobs failed"), "connect postgres://[redacted]@db.internal:5432/jobs failed");
    assert.equal(stripUserInfo("redis://:hunter2@cache:6379/0"), "redis://[redacted]@cache:6379/0");
    assert.equal(stripUserInfo("a=amqps://u:p@ss@mq/vh b=https://tok@git.example/x"), "a=amqps://[redacted]@mq/vh b=https://[redacted]@git.example/x");
    assert.equal(stripUserInfo("see https://example.com/a@b and mail c@d.org"), "see https://example.com/a@b and mail c@d.org");
  });

  test("an endpoint shown without userinfo, query or fragment, whatever its scheme", () => {
    assert.equal(withoutUserInfo("postgres://u:p@db:5432/jobs?sslmode=require"), "postgres://db:5432/jobs");
    assert.equal(withoutUserInfo("http://k:s@127.0.0.1:9324/"), "http://127.0.0.1:9324");
    assert.equal(withoutUserInfo("not a url://u:p@x"), "not a url://[redacted]@x");
  });
});

describe("logger", () => {
  test("secret-bearing keys are censored at the top level and nested, in every case form we meet", () => {
    const { log, text, json } = capture();
    const obj = {
      headers: { authorization: "Bearer CANARY-1", "x-api-key": "CANARY-2", "x-goog-api-key": "CANARY-3", Authorization: "Bearer CANARY-4" },
      apiKey: "CANARY-5",
      config: { store: { databaseUrl: "postgres://u@h/d?CANARY-6", password: "CANARY-7" }, vllm: { apiKey: "CANARY-8" } },
      DATADOG_API_KEY: "CANARY-9",
      deep: { a: { b: { c: { clientSecret: "CANARY-10", api_key: "CANARY-11" } } } },
      requestId: "job-1",
    };
    log.info(obj, "request sent");
    assert.doesNotMatch(text(), /CANARY/);
    const [line] = json();
    assert.equal((line!.headers as Record<string, string>)["x-api-key"], "[redacted]");
    assert.equal(line!.requestId, "job-1");
    assert.equal(obj.headers.authorization, "Bearer CANARY-1", "the caller's object is not modified");
  });

  test("connection strings lose their credentials in the message, err.message, err.stack, causes and nested values", () => {
    const { log, text, json } = capture();
    const cause = new Error("redis://:CANARY-A@cache:6379 refused");
    const err = Object.assign(new Error("cannot reach postgres://app:CANARY-B@db:5432/jobs", { cause }), { input: "amqp://u:CANARY-C@mq" });
    log.error({ err, target: { url: "postgresql://x:CANARY-D@h/db", list: ["redis://:CANARY-E@r"] } }, "store down at postgres://app:CANARY-F@db/jobs");
    log.warn(new Error("direct postgres://a:CANARY-G@h/d"));
    assert.doesNotMatch(text(), /CANARY/);
    const [first] = json();
    assert.match(String(first!.msg), /postgres:\/\/\[redacted\]@db\/jobs/);
    assert.match(String((first!.err as { stack: string }).stack), /postgres:\/\/\[redacted\]@db:5432\/jobs/);
  });

  test("personal data is masked in free text (message, errors, reasons) but ids and codes are not scanned", () => {
    const { log, text, json } = capture();
    log.warn({ err: new Error("provider said: prompt from carol@example.com too long"), reason: "card 4111 1111 1111 1111", requestId: "4111111111111111" }, "job failed for +44 20 7946 0958");
    const out = text();
    assert.doesNotMatch(out, /carol@example\.com|4111 1111|7946/);
    const [line] = json();
    assert.match(String(line!.reason), /\[card\]/);
    assert.match(String((line!.err as { message: string }).message), /\[email\]/);
    assert.equal(line!.requestId, "4111111111111111", "not a free-text field: not scanned");
  });

  test("format: json when asked or not a terminal, pino-pretty's layout when asked or a terminal", () => {
    const cases: [{ format?: LogFormat; isTty?: boolean }, boolean][] = [
      [{ format: "json" }, true],
      [{ format: "auto", isTty: false }, true],
      [{ format: "pretty" }, false],
      [{ format: "auto", isTty: true }, false],
      [{ format: "json", isTty: true }, true],
    ];
    for (const [o, isJson] of cases) {
      const c = capture("info", o);
      c.log.info({ requestId: "r-1", apiKey: "CANARY" }, "hello there");
      const out = c.text();
      assert.match(out, /hello there/);
      assert.doesNotMatch(out, /CANARY/);
      assert.equal(out.trimStart().startsWith("{"), isJson, `${JSON.stringify(o)}: ${out}`);
    }
  });
});

describe("traceparent", () => {
  const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  test("a valid value is read; anything malformed is undefined, never an error", () => {
    assert.deepEqual(parseTraceparent(valid), { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", flags: "01" });
    assert.equal(parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    for (const bad of [undefined, "", "garbage", `${valid}-x`, valid.toUpperCase(), `ff${valid.slice(2)}`, `00-${"0".repeat(32)}-00f067aa0ba902b7-01`, `00-4bf92f3577b34da6a3ce929d0e0e4736-${"0".repeat(16)}-01`]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
  });

  test("a new trace and a child span are well-formed; a child keeps the trace id and changes the span", () => {
    const t = newTrace();
    assert.deepEqual(parseTraceparent(formatTraceparent(t)), t);
    const c = childSpan(t);
    assert.equal(c.traceId, t.traceId);
    assert.notEqual(c.spanId, t.spanId);
    assert.equal(traceOrNew(valid).traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.match(traceOrNew("nope").traceId, /^[0-9a-f]{32}$/);
  });
});
