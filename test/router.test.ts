/**
 * The provider router's policy with small fake providers and an injected clock: fallback, per-provider breakers
 * (a single-provider chain trips too), no retry on the content's faults, Retry-After within the budget and past
 * the cap, in-flight limits under 1,000 concurrent calls, spend ceilings, risk routing, caller aborts. Then one
 * fallback between two real vLLM simulators.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, ProviderRetryableError, ProviderTerminalError } from "../shared/errors.ts";
import type { CompletionRequest } from "../shared/providers/provider.ts";
import { isAbortError } from "../shared/providers/provider.ts";
import { ProviderRouter, type ProviderRouterOptions, type RouteOptions } from "../shared/providers/router.ts";
import { VllmClient } from "../shared/providers/vllm.ts";
import { startVllmSimulator } from "../scripts/simulators/vllm/server.ts";
import { FakeClock } from "./support/fake-clock.ts";
import { completion, FakeProvider } from "./support/fake-provider.ts";
import { until } from "./support/env.ts";

const REQ: CompletionRequest = { prompt: "Say something about queues.", params: { max_tokens: 16 } };

const down = (retryAfterMs?: number) => new ProviderRetryableError("PROVIDER_UNAVAILABLE", "backend down", { retryAfterMs });

function route(provider: FakeProvider, o: Partial<RouteOptions> = {}): RouteOptions {
  return { provider, maxInFlight: 16, ...o };
}

/** A router on a fake clock with no jitter (backoff waits 0 ms), so only requested delays move time. */
function router(routes: RouteOptions[], o: Partial<ProviderRouterOptions> = {}) {
  const clock = new FakeClock();
  const allOpenCalls: number[] = [];
  const r = new ProviderRouter({ routes, clock, random: () => 0, onAllOpen: () => allOpenCalls.push(clock.now()), ...o });
  return { r, clock, allOpenCalls };
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; retryAfterMs?: number }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.fail("expected a rejection");
}

describe("ProviderRouter: fallback and breakers", () => {
  test("the primary down: its breaker opens after 3 failures, the job falls back; later jobs skip it at once", async () => {
    const vllm = new FakeProvider("vllm", () => down());
    const ollama = new FakeProvider("ollama");
    const { r } = router([route(vllm), route(ollama)]);

    const first = await r.generate(REQ);
    assert.equal(first.provider, "ollama");
    assert.deepEqual(first.attempts?.map((a) => [a.provider, a.ok, a.code]), [
      ["vllm", false, "PROVIDER_UNAVAILABLE"],
      ["vllm", false, "PROVIDER_UNAVAILABLE"],
      ["vllm", false, "PROVIDER_UNAVAILABLE"],
      ["ollama", true, undefined],
    ]);
    assert.equal(first.costUsd, 0);
    assert.equal(typeof first.latencyMs, "number");

    const second = await r.generate(REQ);
    assert.deepEqual(second.attempts?.map((a) => a.provider), ["ollama"]);
    assert.equal(vllm.calls, 3);
    const [vllmHealth, ollamaHealth] = r.health().routes;
    assert.equal(vllmHealth?.state, "open");
    assert.equal(vllmHealth?.lastErrorCode, "PROVIDER_UNAVAILABLE");
    assert.equal(ollamaHealth?.state, "closed");
    assert.equal(r.allOpen, false);
  });

  test("a provider is not retried once its breaker opens, even with attempts left", async () => {
    const vllm = new FakeProvider("vllm", () => down());
    const ollama = new FakeProvider("ollama");
    const { r } = router([route(vllm, { maxAttempts: 10 }), route(ollama)], { failureThreshold: 3 });
    assert.equal((await r.generate(REQ)).provider, "ollama");
    assert.equal(vllm.calls, 3);
  });

  test("after the cool-down one real job probes the primary; success closes it and traffic returns", async () => {
    let healthy = false;
    const vllm = new FakeProvider("vllm", () => (healthy ? completion("vllm") : down()));
    const ollama = new FakeProvider("ollama");
    const { r, clock } = router([route(vllm), route(ollama)], { coolDownMs: 60_000 });
    await r.generate(REQ);
    healthy = true;
    assert.equal((await r.generate(REQ)).provider, "ollama", "still open inside the cool-down");
    await clock.advance(60_000);
    assert.equal(r.health().routes[0]?.state, "half-open");
    const probe = await r.generate(REQ);
    assert.equal(probe.provider, "vllm");
    assert.equal(r.health().routes[0]?.state, "closed");
  });

  test("a single-provider chain trips: the job is handed back, later jobs get PROVIDER_CIRCUIT_OPEN without a call", async () => {
    const only = new FakeProvider("vllm", () => down());
    const { r, clock, allOpenCalls } = router([route(only)], { coolDownMs: 60_000 });

    const first = await rejection(r.generate(REQ));
    assert.ok(first instanceof ProviderRetryableError);
    assert.equal(first.code, "PROVIDER_UNAVAILABLE");
    assert.equal(only.calls, 3);
    assert.equal(r.allOpen, true);
    assert.equal(allOpenCalls.length, 1);

    const second = await rejection(r.generate(REQ));
    assert.ok(second instanceof ProviderRetryableError);
    assert.equal(second.code, "PROVIDER_CIRCUIT_OPEN");
    assert.equal(second.retryAfterMs, 60_000, "hand back until the cool-down ends");
    assert.equal(only.calls, 3);

    // The worker waits for any provider; the cool-down ending is what wakes it.
    const stop = new AbortController();
    let woke = false;
    const waiting = r.waitAnyAvailable(stop.signal).then(() => (woke = true));
    await clock.advance(59_000);
    assert.equal(woke, false);
    await clock.advance(1_000);
    await waiting;
    assert.equal(r.allOpen, false);
    assert.equal(r.recovering, true, "past the cool-down only a probe may go: the worker takes one message, not a batch");
    only.answer = () => completion("vllm");
    await r.generate(REQ);
    assert.equal(r.recovering, false, "the probe closed it");
  });

  test("waitAnyClosed probes a rested provider with one token, so no job is spent on a probe; resolves when one closes", async () => {
    let up = false;
    const only = new FakeProvider("vllm", () => (up ? completion("vllm") : down()));
    const { r, clock } = router([route(only)], { coolDownMs: 10_000 });
    await rejection(r.generate(REQ));
    assert.equal(only.calls, 3);
    assert.equal(r.recovering, true);
    let closed = false;
    const waiting = r.waitAnyClosed(new AbortController().signal).then(() => (closed = true));
    await clock.advance(10_000); // rested: a one-token probe, still down
    await until(() => only.calls === 4, "the first probe");
    assert.deepEqual({ tokens: only.requests[3]?.params.max_tokens, id: only.requests[3]?.requestId }, { tokens: 1, id: "circuit-probe" });
    assert.equal(closed, false);
    up = true;
    await clock.advance(10_000); // rested again: the probe succeeds and closes it
    await waiting;
    assert.equal(only.calls, 5);
    assert.equal(r.recovering, false);
  });

  test("half-open admits one probe: while it is out every other job is handed back; a failed probe re-opens", async () => {
    let release!: () => void;
    const only = new FakeProvider("vllm", (call) => (call <= 3 ? down() : new Promise((resolve) => (release = () => resolve(down())))));
    const { r, clock, allOpenCalls } = router([route(only)], { coolDownMs: 1_000 });
    await rejection(r.generate(REQ));
    await clock.advance(1_000);

    const probe = rejection(r.generate(REQ));
    await until(() => only.calls === 4, "the probe call");
    assert.equal(r.allOpen, true, "a probe out: nothing else admitted");
    assert.equal((await rejection(r.generate(REQ))).code, "PROVIDER_CIRCUIT_OPEN");
    release();
    assert.equal((await probe).code, "PROVIDER_UNAVAILABLE");
    assert.equal(r.health().routes[0]?.state, "open");
    assert.equal(only.calls, 4);
    assert.equal(allOpenCalls.length, 2, "told again when the probe fails");
  });

  test("waitAnyAvailable returns at once when a provider is available, and when its signal aborts", async () => {
    const only = new FakeProvider("vllm", () => down());
    const { r } = router([route(only)], { coolDownMs: 3_600_000 });
    await r.waitAnyAvailable(new AbortController().signal);
    await rejection(r.generate(REQ));
    const stop = new AbortController();
    const waiting = r.waitAnyAvailable(stop.signal);
    stop.abort();
    await waiting;
    assert.equal(r.allOpen, true);
  });
});

describe("ProviderRouter: what is not retried", () => {
  test("a terminal error ends the job: no retry, no fallback, no breaker failure", async () => {
    const refusal = new ProviderTerminalError("PROVIDER_BAD_REQUEST", "context too long");
    const vllm = new FakeProvider("vllm", () => refusal);
    const ollama = new FakeProvider("ollama");
    const { r } = router([route(vllm), route(ollama)]);
    assert.equal(await rejection(r.generate(REQ)), refusal);
    assert.equal(vllm.calls, 1);
    assert.equal(ollama.calls, 0);
    assert.equal(r.health().routes[0]?.consecutiveFailures, 0);
  });

  test("a provider's own refusal (daily quota spent, bad key) moves the job on and counts against that provider", async () => {
    const quota = new ProviderTerminalError("PROVIDER_QUOTA_EXHAUSTED", "GenerateRequestsPerDay exhausted");
    const gemini = new FakeProvider("gemini", () => quota);
    const vllm = new FakeProvider("vllm");
    const { r } = router([route(gemini), route(vllm)]);
    const answer = await r.generate(REQ);
    assert.equal(answer.provider, "vllm");
    assert.equal(gemini.calls, 1, "not retried on the provider that refused");
    assert.equal(r.health().routes[0]?.consecutiveFailures, 1);
    const alone = router([route(new FakeProvider("gemini", () => quota))]).r;
    const err = await rejection(alone.generate(REQ));
    assert.equal((err as { retryable?: boolean }).retryable, true, "alone, the job goes back to the queue rather than failing");
  });

  test("a content block (countsAgainstProvider === false) ends the job even though it is flagged retryable", async () => {
    const blocked = Object.assign(new ProviderRetryableError("PROVIDER_UNAVAILABLE", "blocked by safety filters"), { countsAgainstProvider: false });
    const gemini = new FakeProvider("gemini", () => blocked);
    const vllm = new FakeProvider("vllm");
    const { r } = router([route(gemini), route(vllm)]);
    for (let i = 0; i < 5; i++) assert.equal(await rejection(r.generate(REQ)), blocked);
    assert.equal(gemini.calls, 5);
    assert.equal(vllm.calls, 0);
    assert.equal(r.health().routes[0]?.state, "closed", "content blocks never open the breaker");
  });

  test("a caller's abort ends the job with an AbortError; the provider is not blamed and nothing else is tried", async () => {
    const stop = new AbortController();
    const vllm = new FakeProvider("vllm", () => {
      stop.abort(new Error("shutdown"));
      return Object.assign(new Error("aborted"), { name: "AbortError" });
    });
    const ollama = new FakeProvider("ollama");
    const { r } = router([route(vllm), route(ollama)]);
    const err = await rejection(r.generate(REQ, stop.signal));
    assert.ok(isAbortError(err));
    assert.equal(ollama.calls, 0);
    assert.equal(r.health().routes[0]?.consecutiveFailures, 0);
  });

  test("a caller's abort while the job waits for a slot ends it with an AbortError, not a hand-back", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const ollama = new FakeProvider("ollama", async () => (await gate, completion("ollama")));
    const r = new ProviderRouter({ routes: [{ provider: ollama, maxInFlight: 1 }] });
    const holder = r.generate(REQ);
    const stop = new AbortController();
    const waiter = rejection(r.generate(REQ, stop.signal));
    await until(() => r.health().routes[0]?.waiting === 1, "the second job to queue for the slot");
    stop.abort(new Error("shutdown"));
    assert.ok(isAbortError(await waiter));
    assert.equal(r.health().routes[0]?.waiting, 0);
    open();
    await holder;
    assert.equal(ollama.calls, 1);
  });
});

describe("ProviderRouter: retry delays and the budget", () => {
  test("a requested delay within the budget is waited out and the same provider retried", async () => {
    const vllm = new FakeProvider("vllm", (call) => (call === 1 ? down(10_000) : completion("vllm")));
    const ollama = new FakeProvider("ollama");
    const { r, clock } = router([route(vllm), route(ollama)], { budgetMs: 30_000 });
    const started = clock.now();
    const c = await clock.run(r.generate(REQ));
    assert.equal(c.provider, "vllm");
    assert.deepEqual(c.attempts?.map((a) => [a.provider, a.ok]), [["vllm", false], ["vllm", true]]);
    assert.equal(clock.now() - started, 10_000);
    assert.equal(c.latencyMs, 10_000);
    assert.equal(ollama.calls, 0);
  });

  test("a requested delay over the cap moves on at once, even with budget to spare; the last error's delay reaches the caller", async () => {
    const gemini = new FakeProvider("gemini", () => down(120_000));
    const vllm = new FakeProvider("vllm");
    const { r, clock } = router([route(gemini), route(vllm)], { retryAfterCapMs: 60_000, budgetMs: 600_000 });
    const started = clock.now();
    const c = await clock.run(r.generate(REQ));
    assert.equal(c.provider, "vllm");
    assert.equal(gemini.calls, 1);
    assert.equal(clock.now(), started, "no wait");

    const alone = router([route(new FakeProvider("gemini", () => down(120_000)))]);
    const err = await rejection(alone.r.generate(REQ));
    assert.equal(err.code, "PROVIDER_UNAVAILABLE");
    assert.equal(err.retryAfterMs, 120_000, "the worker hands the job back for the requested delay");
  });

  test("a requested delay under the cap but past the budget moves on too", async () => {
    const vllm = new FakeProvider("vllm", () => down(20_000));
    const ollama = new FakeProvider("ollama");
    const { r, clock } = router([route(vllm), route(ollama)], { budgetMs: 15_000 });
    const started = clock.now();
    assert.equal((await r.generate(REQ)).provider, "ollama");
    assert.equal(vllm.calls, 1);
    assert.equal(clock.now(), started);
  });

  test("the job's own deadline shortens the budget", async () => {
    const vllm = new FakeProvider("vllm", () => down(5_000));
    const ollama = new FakeProvider("ollama");
    const { r, clock } = router([route(vllm), route(ollama)], { budgetMs: 30_000 });
    const c = await r.generate({ ...REQ, deadlineAt: clock.now() + 4_000 });
    assert.equal(c.provider, "ollama");
    assert.equal(vllm.calls, 1);
  });

  test("backoff between retries is full jitter: uniform below base·2^attempt", async () => {
    const draws = [0.5, 0.99];
    const vllm = new FakeProvider("vllm", (call) => (call <= 2 ? down() : completion("vllm")));
    const { r, clock } = router([route(vllm)], { random: () => draws.shift() ?? 0, backoffBaseMs: 1_000, backoffCapMs: 60_000, failureThreshold: 5 });
    const started = clock.now();
    const c = await clock.run(r.generate(REQ));
    assert.equal(c.provider, "vllm");
    // attempt 0: 0.5 × 1 000; attempt 1: 0.99 × 2 000
    assert.equal(clock.now() - started, 500 + 1_980);
  });
});

describe("ProviderRouter: limits", () => {
  test("1,000 concurrent jobs never exceed any provider's in-flight limit", async () => {
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    const providers = ["vllm", "ollama", "gemini"].map((name) => new FakeProvider(name, async () => (await tick(), completion(name, { promptTokens: 0, completionTokens: 0 }))));
    const [vllm, ollama, gemini] = providers as [FakeProvider, FakeProvider, FakeProvider];
    const r = new ProviderRouter({
      routes: [
        { provider: vllm, maxInFlight: 8, queueWaitMs: 0 },
        { provider: ollama, maxInFlight: 4, queueWaitMs: 0 },
        { provider: gemini, maxInFlight: 16 },
      ],
    });
    const peaks = new Map<string, number>();
    const watch = setInterval(() => {
      for (const h of r.health().routes) peaks.set(h.name, Math.max(peaks.get(h.name) ?? 0, h.inFlight));
    }, 1);
    const results = await Promise.all(Array.from({ length: 1_000 }, () => r.generate(REQ))).finally(() => clearInterval(watch));
    assert.equal(results.length, 1_000);
    assert.ok(vllm.maxInFlight <= 8, `vllm peaked at ${vllm.maxInFlight}`);
    assert.ok(ollama.maxInFlight <= 4, `ollama peaked at ${ollama.maxInFlight}`);
    assert.ok(gemini.maxInFlight <= 16, `gemini peaked at ${gemini.maxInFlight}`);
    assert.ok(vllm.calls > 0 && ollama.calls > 0 && gemini.calls > 0, "overflow spilled down the chain");
    assert.equal(vllm.calls + ollama.calls + gemini.calls, 1_000);
    for (const h of r.health().routes) {
      assert.equal(h.inFlight, 0);
      assert.ok((peaks.get(h.name) ?? 0) <= h.maxInFlight);
    }
  });

  test("jobs over a provider's limit wait only within their budget, then go back to the queue: never a flood", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const ollama = new FakeProvider("ollama", async () => (await gate, completion("ollama")));
    const r = new ProviderRouter({ routes: [{ provider: ollama, maxInFlight: 4 }], budgetMs: 200 });
    const outcomes = Array.from({ length: 1_000 }, () => r.generate(REQ).then(() => "ok", (err: { code?: string }) => err.code));
    let settled = 0;
    for (const o of outcomes) void o.then(() => (settled += 1));
    await until(() => settled === 996, "the jobs beyond the limit to be handed back");
    assert.equal(ollama.calls, 4);
    open();
    const all = await Promise.all(outcomes);
    assert.equal(all.filter((o) => o === "ok").length, 4);
    assert.equal(all.filter((o) => o === "PROVIDER_OVERLOADED").length, 996);
    assert.equal(ollama.maxInFlight, 4);
  });

  test("requests per minute: a job waits for its turn within the budget, or moves on when the wait is too long", async () => {
    const gemini = new FakeProvider("gemini");
    const vllm = new FakeProvider("vllm");
    const { r, clock } = router([route(gemini, { requestsPerMinute: 2 }), route(vllm)], { budgetMs: 40_000 });
    await r.generate(REQ);
    await r.generate(REQ);
    const started = clock.now();
    assert.equal((await clock.run(r.generate(REQ))).provider, "gemini");
    assert.equal(clock.now() - started, 30_000, "one request's worth of a 2/min bucket refills in 30 s");

    const tight = router([route(new FakeProvider("gemini"), { requestsPerMinute: 1, queueWaitMs: 1_000 }), route(vllm)]);
    await tight.r.generate(REQ);
    assert.equal((await tight.r.generate(REQ)).provider, "vllm");
  });

  test("tokens per minute are estimated from prompt characters / 4 plus max_tokens", async () => {
    const gemini = new FakeProvider("gemini");
    const vllm = new FakeProvider("vllm");
    const { r } = router([route(gemini, { tokensPerMinute: 1_000, queueWaitMs: 0 }), route(vllm)]);
    const big = { prompt: "x".repeat(2_000), params: { max_tokens: 600 } }; // 500 + 600 > 1 000
    assert.equal((await r.generate(big)).provider, "vllm");
    const small = { prompt: "x".repeat(400), params: { max_tokens: 100 } }; // 100 + 100
    assert.equal((await r.generate(small)).provider, "gemini");
  });
});

describe("ProviderRouter: cost and risk", () => {
  const flash = { model: "gemini-2.5-flash", promptTokens: 1_000, completionTokens: 1_000 };
  // 1 000 × 0.30 + 1 000 × 2.50 per 1M tokens
  const FLASH_CALL_USD = 0.0028;

  test("each answer carries its cost; over the hourly ceiling the paid provider is skipped for a cheaper one until the hour ends", async () => {
    const gemini = new FakeProvider("gemini", () => completion("gemini", flash));
    const ollama = new FakeProvider("ollama");
    const ceiling = 0.01;
    const { r, clock } = router([route(gemini, { model: "gemini-2.5-flash", spendCeilingUsdPerHour: ceiling }), route(ollama)]);
    const req = { prompt: "x".repeat(4_000), params: { max_tokens: 1_000 } };

    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await r.generate(req));
    const paid = answers.filter((a) => a.provider === "gemini");
    assert.equal(paid.length, 3, "three calls of 0.0028 fit under 0.01");
    for (const a of paid) assert.ok(Math.abs((a.costUsd ?? 0) - FLASH_CALL_USD) < 1e-12);
    for (const a of answers.slice(3)) assert.equal(a.provider, "ollama");
    const health = r.health().routes[0];
    assert.ok(Math.abs((health?.spentUsdThisHour ?? 0) - 3 * FLASH_CALL_USD) < 1e-12);
    assert.equal(health?.overSpendCeiling, true);
    assert.equal(health?.lastErrorCode, "SPEND_CEILING_REACHED");

    await clock.advance(30 * 60_000); // the next clock hour
    assert.equal((await r.generate(req)).provider, "gemini");
  });

  test("a lone paid provider over its ceiling counts as open: jobs are handed back, intake may pause", async () => {
    const gemini = new FakeProvider("gemini", () => completion("gemini", flash));
    const { r, allOpenCalls } = router([route(gemini, { model: "gemini-2.5-flash", spendCeilingUsdPerHour: 0.005 })]);
    const req = { prompt: "x".repeat(4_000), params: { max_tokens: 1_000 } };
    await r.generate(req);
    const err = await rejection(r.generate(req));
    assert.equal(err.code, "PROVIDER_CIRCUIT_OPEN");
    assert.ok((err.retryAfterMs ?? 0) > 0 && (err.retryAfterMs ?? 0) <= 30 * 60_000, "until the hour ends");
    assert.equal(r.allOpen, true);
    assert.equal(allOpenCalls.length, 1);
    assert.equal(gemini.calls, 1);
  });

  test("a high-risk request starts at the accurate provider; others at the primary", async () => {
    const vllm = new FakeProvider("vllm");
    const gemini = new FakeProvider("gemini");
    const { r } = router([route(vllm), route(gemini)], { accurateRoute: "gemini" });
    assert.equal((await r.generate({ ...REQ, risk: "high" })).provider, "gemini");
    assert.equal((await r.generate({ ...REQ, risk: "medium" })).provider, "vllm");
    assert.equal((await r.generate(REQ)).provider, "vllm");
  });

  test("a high-risk request falls back down the chain when the accurate provider is open", async () => {
    const vllm = new FakeProvider("vllm");
    const gemini = new FakeProvider("gemini", () => down());
    const { r } = router([route(vllm), route(gemini)], { accurateRoute: "gemini" });
    const c = await r.generate({ ...REQ, risk: "high" });
    assert.equal(c.provider, "vllm");
    assert.deepEqual(c.attempts?.map((a) => a.provider), ["gemini", "gemini", "gemini", "vllm"]);
  });
});

describe("ProviderRouter: configuration", () => {
  test("a provider twice in the chain, an unknown accurate provider or a bad limit is refused with every issue", () => {
    const a = new FakeProvider("vllm");
    assert.throws(
      () => new ProviderRouter({ routes: [route(a), route(a), route(new FakeProvider("x"), { maxInFlight: 0 })], accurateRoute: "gemini" }),
      (err: unknown) => err instanceof ConfigError && err.issues.length === 3,
    );
    assert.throws(() => new ProviderRouter({ routes: [] }), ConfigError);
  });

  test("close() closes every provider", async () => {
    const a = new FakeProvider("vllm");
    const b = new FakeProvider("ollama");
    await new ProviderRouter({ routes: [route(a), route(b)] }).close();
    assert.ok(a.closed && b.closed);
  });
});

describe("ProviderRouter against two vLLM simulators", () => {
  test("the primary's engine dies: jobs fall back to the second; it recovers and a probe brings traffic back", async () => {
    const primary = await startVllmSimulator({ port: 0, profile: "instant", seed: 1 });
    const fallback = await startVllmSimulator({ port: 0, profile: "instant", seed: 2 });
    const client = (url: string, model: string) => new VllmClient({ baseUrl: url, model, timeoutMs: 5_000, connections: 8 });
    const clock = new FakeClock();
    const r = new ProviderRouter({
      routes: [
        { name: "vllm-a", provider: client(primary.url, primary.options.model), maxInFlight: 8 },
        { name: "vllm-b", provider: client(fallback.url, fallback.options.model), maxInFlight: 8 },
      ],
      clock,
      random: () => 0,
      coolDownMs: 60_000,
    });
    try {
      assert.deepEqual((await r.generate(REQ)).attempts?.map((a) => a.provider), ["vllm-a"]);
      await primary.setFaults({ engineDead: true });
      const first = await r.generate(REQ);
      assert.deepEqual(first.attempts?.map((a) => [a.provider, a.ok]), [["vllm-a", false], ["vllm-a", false], ["vllm-a", false], ["vllm-b", true]]);
      assert.ok(first.text.length > 0);
      assert.equal(first.provider, "vllm");
      const during = await Promise.all(Array.from({ length: 20 }, () => r.generate(REQ)));
      assert.ok(during.every((c) => c.attempts?.length === 1 && c.attempts[0]?.provider === "vllm-b"));

      await primary.setFaults({ engineDead: false });
      await clock.advance(60_000);
      const probe = await r.generate(REQ);
      assert.deepEqual(probe.attempts?.map((a) => [a.provider, a.ok]), [["vllm-a", true]]);
      assert.equal(r.health().routes[0]?.state, "closed");
    } finally {
      await r.close();
      await primary.close();
      await fallback.close();
    }
  });
});
