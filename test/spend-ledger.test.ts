/**
 * Spend ledgers: the in-process one, and the Redis one against the real Redis on this machine (a unique key prefix
 * per test), including a ceiling shared by two routers (two workers) and an unreachable Redis stopping paid calls.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { RedisSpendLedger } from "../shared/providers/redis-spend-ledger.ts";
import { ProviderRouter } from "../shared/providers/router.ts";
import { hourOf, InProcessSpendLedger, type SpendLedger } from "../shared/providers/spend-ledger.ts";
import { FakeClock } from "./support/fake-clock.ts";
import { completion, FakeProvider } from "./support/fake-provider.ts";
import { REDIS_URL } from "./support/env.ts";

const admin = new Redis(REDIS_URL);
const prefixes: string[] = [];
const ledgers: SpendLedger[] = [];

function redisLedger(url = REDIS_URL): { ledger: RedisSpendLedger; prefix: string } {
  const prefix = `test:spend:${randomBytes(5).toString("hex")}:`;
  prefixes.push(prefix);
  const ledger = new RedisSpendLedger({ url, keyPrefix: prefix });
  ledgers.push(ledger);
  return { ledger, prefix };
}

after(async () => {
  for (const p of prefixes) {
    const keys = await admin.keys(`${p}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await Promise.all(ledgers.map((l) => l.close?.()));
  await admin.quit();
});

const HOUR = hourOf(Date.UTC(2026, 0, 1, 12, 30));

for (const [kind, make] of [["in-process", () => new InProcessSpendLedger()], ["redis", () => redisLedger().ledger]] as const) {
  describe(`${kind} spend ledger`, () => {
    test("reserves up to the ceiling, refuses past it, and corrections move the total", async () => {
      const ledger: SpendLedger = make();
      assert.deepEqual(await ledger.reserve("gemini", HOUR, 0.4, 1), { ok: true, spentUsd: 0.4 });
      assert.deepEqual(await ledger.reserve("gemini", HOUR, 0.5, 1), { ok: true, spentUsd: 0.9 });
      const refused = await ledger.reserve("gemini", HOUR, 0.2, 1);
      assert.equal(refused.ok, false);
      assert.ok(Math.abs(refused.spentUsd - 0.9) < 1e-9);
      assert.ok(Math.abs((await ledger.add("gemini", HOUR, -0.3)) - 0.6) < 1e-9);
      assert.equal((await ledger.reserve("gemini", HOUR, 0.2, 1)).ok, true);
      assert.deepEqual(await ledger.reserve("gemini", HOUR + 1, 0.2, 1), { ok: true, spentUsd: 0.2 }, "a new hour starts at 0");
      assert.deepEqual(await ledger.reserve("other", HOUR, 1, 1), { ok: true, spentUsd: 1 }, "providers are counted apart");
    });

    test("concurrent reservations never pass the ceiling together", async () => {
      const ledger: SpendLedger = make();
      const results = await Promise.all(Array.from({ length: 50 }, () => ledger.reserve("gemini", HOUR, 0.125, 1)));
      assert.equal(results.filter((r) => r.ok).length, 8);
    });
  });
}

describe("RedisSpendLedger", () => {
  test("one key per provider and hour, expiring within two hours", async () => {
    const { ledger, prefix } = redisLedger();
    await ledger.reserve("gemini", HOUR, 0.01, 5);
    const key = `${prefix}spend:gemini:${HOUR}`;
    assert.equal(Number(await admin.get(key)), 0.01);
    const ttl = await admin.ttl(key);
    assert.ok(ttl > 0 && ttl <= 7_200, `ttl ${ttl}`);
  });

  test("two workers share one ceiling: once one has spent it, the other skips the paid provider", async () => {
    const { prefix } = redisLedger();
    const clock = new FakeClock();
    const flash = () => completion("gemini", { model: "gemini-2.5-flash", promptTokens: 1_000, completionTokens: 1_000 });
    const worker = () => {
      const gemini = new FakeProvider("gemini", flash);
      const ollama = new FakeProvider("ollama");
      const ledger = new RedisSpendLedger({ url: REDIS_URL, keyPrefix: prefix });
      ledgers.push(ledger);
      const r = new ProviderRouter({
        routes: [
          { provider: gemini, maxInFlight: 16, model: "gemini-2.5-flash", spendCeilingUsdPerHour: 0.01 },
          { provider: ollama, maxInFlight: 4 },
        ],
        spendLedger: ledger,
        clock,
      });
      return { r, gemini, ollama };
    };
    const a = worker();
    const b = worker();
    const req = { prompt: "x".repeat(4_000), params: { max_tokens: 1_000 } };
    for (let i = 0; i < 3; i++) assert.equal((await a.r.generate(req)).provider, "gemini");
    const fromB = await b.r.generate(req);
    assert.equal(fromB.provider, "ollama");
    assert.equal(b.gemini.calls, 0);
    assert.equal(b.r.health().routes[0]?.overSpendCeiling, true);
    assert.ok(Math.abs(Number(await admin.get(`${prefix}spend:gemini:${hourOf(clock.now())}`)) - 3 * 0.0028) < 1e-9);
  });

  test("an unreachable ledger stops a provider with a ceiling (fail closed); one without a ceiling still serves", async () => {
    const { ledger } = redisLedger("redis://127.0.0.1:1");
    const capped = new FakeProvider("gemini", () => completion("gemini", { model: "gemini-2.5-flash" }));
    const ollama = new FakeProvider("ollama");
    const r = new ProviderRouter({
      routes: [
        { provider: capped, maxInFlight: 4, model: "gemini-2.5-flash", spendCeilingUsdPerHour: 10 },
        { provider: ollama, maxInFlight: 4 },
      ],
      spendLedger: ledger,
    });
    assert.equal((await r.generate({ prompt: "hi", params: { max_tokens: 8 } })).provider, "ollama");
    assert.equal(capped.calls, 0);
    assert.equal(r.health().routes[0]?.lastErrorCode, "SPEND_LEDGER_UNAVAILABLE");

    const uncapped = new FakeProvider("gemini", () => completion("gemini", { model: "gemini-2.5-flash" }));
    const open = new ProviderRouter({ routes: [{ provider: uncapped, maxInFlight: 4, model: "gemini-2.5-flash" }], spendLedger: ledger });
    const c = await open.generate({ prompt: "hi", params: { max_tokens: 8 } });
    assert.equal(c.provider, "gemini");
    assert.ok((c.costUsd ?? 0) > 0);
  });
});
