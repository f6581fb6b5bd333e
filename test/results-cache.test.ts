import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { once } from "node:events";
import { Redis } from "ioredis";
import type { JobRecord } from "../shared/store/job-record.ts";
import { ResultsCache } from "../shared/store/results-cache.ts";

const REDIS = "redis://127.0.0.1:6379";
const prefixes: string[] = [];
const toClose: { close(): Promise<void> }[] = [];

function prefix(): string {
  const p = `test:cache:${randomBytes(5).toString("hex")}:`;
  prefixes.push(p);
  return p;
}

function cache(o: Partial<ConstructorParameters<typeof ResultsCache>[0]> = {}): ResultsCache {
  const c = new ResultsCache({ url: REDIS, ttlSeconds: 120, keyPrefix: prefix(), ...o });
  toClose.push(c);
  return c;
}

function record(id: string, status: JobRecord["status"] = "succeeded"): JobRecord {
  return {
    id,
    tenant: "acme",
    status,
    output: `output of ${id}`,
    outputNulReplaced: 0,
    finishReason: "stop",
    usage: { promptTokens: 3, completionTokens: 7 },
    provider: "vllm",
    model: "llama",
    attempts: 1,
    providerCalls: 1,
    resultWrites: 1,
    error: undefined,
    createdAt: new Date("2025-01-01T00:00:00.000Z"),
    startedAt: new Date("2025-01-01T00:00:01.000Z"),
    finishedAt: new Date("2025-01-01T00:00:02.000Z"),
  };
}

/** A logger that counts calls and lets a test await the next one. */
function recordingLogger() {
  const calls = { warn: 0, info: 0 };
  const waiters: { level: "warn" | "info"; resolve: () => void }[] = [];
  const hit = (level: "warn" | "info") => {
    calls[level]++;
    for (const w of waiters.splice(0)) (w.level === level ? w.resolve() : waiters.push(w));
  };
  return {
    calls,
    next: (level: "warn" | "info") => new Promise<void>((resolve) => waiters.push({ level, resolve })),
    logger: { warn: () => hit("warn"), info: () => hit("info") } as never,
  };
}

after(async () => {
  await Promise.all(toClose.map((c) => c.close()));
  const raw = new Redis(REDIS);
  for (const p of prefixes) {
    const keys = await raw.keys(`${p}*`);
    if (keys.length > 0) await raw.del(...keys);
  }
  await raw.quit();
});

describe("ResultsCache", () => {
  test("putMany stores records with a TTL and announces each id; get/getMany read them back", async () => {
    const c = cache();
    assert.equal(await c.ready(), true);
    assert.equal(c.available, true);
    const seen: string[] = [];
    let twoSeen!: () => void;
    const bothAnnounced = new Promise<void>((resolve) => (twoSeen = resolve));
    // Resolves once SUBSCRIBE is acknowledged, so nothing published after it can be missed.
    const stop = await c.subscribe((id) => {
      seen.push(id);
      if (seen.length === 2) twoSeen();
    });
    toClose.push({ close: stop });
    const failed = { ...record("b", "failed"), output: undefined, usage: undefined, error: { code: "X", message: "boom" } };
    await c.putMany([record("a"), failed]);
    await bothAnnounced;
    assert.deepEqual(seen, ["a", "b"]);
    assert.deepEqual(await c.get("a"), record("a"));
    assert.deepEqual(await c.getMany(["b", "nope", "a"]), [failed, undefined, record("a")]);
    const raw = new Redis(REDIS);
    const ttl = await raw.ttl(`${prefixes.at(-1)}job:a`);
    await raw.quit();
    assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
  });

  test("a closed port: everything resolves quickly, nothing throws, one warning", async () => {
    const log = recordingLogger();
    const t0 = performance.now();
    const c = cache({ url: "redis://127.0.0.1:1", logger: log.logger, connectTimeoutMs: 500 });
    assert.equal(await c.ready(), false);
    assert.equal(c.available, false);
    await c.putMany([record("a")]);
    assert.equal(await c.get("a"), undefined);
    assert.deepEqual(await c.getMany(["a", "b"]), [undefined, undefined]);
    const stop = await c.subscribe(() => assert.fail("no message can arrive"));
    await stop();
    await c.close();
    assert.ok(performance.now() - t0 < 3_000, `took ${performance.now() - t0} ms`);
    assert.equal(log.calls.warn, 1);
  });

  test("an outage is logged once, skipped over, and recovered from", async () => {
    const proxy = await startProxy(6379);
    const log = recordingLogger();
    const c = cache({ url: `redis://127.0.0.1:${proxy.port}`, logger: log.logger, connectTimeoutMs: 500 });
    assert.equal(await c.ready(), true);
    await c.putMany([record("before")]);
    const warned = log.next("warn");
    await proxy.stop();
    await warned;
    for (let i = 0; i < 3; i++) {
      await c.putMany([record(`during-${i}`)]);
      assert.equal(await c.get("before"), undefined);
    }
    const recovered = log.next("info");
    await proxy.start();
    await recovered;
    assert.equal(c.available, true);
    assert.equal((await c.get("before"))?.output, "output of before");
    assert.equal(log.calls.warn, 1, "one warning for the whole outage");
    await c.close();
    await proxy.stop();
  });
});

/** A TCP proxy to Redis that can be cut (every socket destroyed, port closed) and restored on the same port. */
async function startProxy(targetPort: number) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const start = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as net.AddressInfo).port;
  };
  const stop = async () => {
    if (!server) return;
    const s = server;
    server = undefined;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const sock of sockets) sock.destroy();
    await closed;
  };
  await start();
  return { get port() { return port; }, start, stop };
}
