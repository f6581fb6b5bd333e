import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { embeddedBlocker, resolveDatabase } from "../scripts/local/database.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DATABASE_TS = fileURLToPath(new URL("../scripts/local/database.ts", import.meta.url));
/** Nothing listens on port 1: forces the embedded path even though the local test server is up. */
const CLOSED = "postgres://postgres@127.0.0.1:1/test";
const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];

after(async () => {
  for (const stop of stops) await stop().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "fleet-db-test-"));
  dirs.push(d);
  return d;
}

async function serverInfo(url: string): Promise<{ version: string; listen: string }> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  await c.connect();
  try {
    const version = (await c.query("SHOW server_version")).rows[0].server_version as string;
    const listen = (await c.query("SHOW listen_addresses")).rows[0].listen_addresses as string;
    return { version, listen };
  } finally {
    await c.end();
  }
}

async function refuses(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  c.on("error", () => undefined);
  try {
    await c.connect();
    await c.end();
    return false;
  } catch {
    return true;
  }
}

function pidOf(dataDir: string): Promise<number> {
  return readFile(path.join(dataDir, "cluster", "postmaster.pid"), "utf8").then((t) => Number(t.split("\n")[0]));
}

/** As root the embedded server runs as `postgres`; elsewhere as ourselves. */
function serverUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** The child's first stdout line; rejects if it exits first (otherwise the test would hang on an empty loop). */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`host exited (${code}) before printing its URL`)));
  });
}

// A checkout the server user cannot reach (root, under a 0700 directory) cannot run embedded Postgres at all:
// that is reported (and the embedded cases skipped, visibly) rather than crashing the test process.
const blocked = embeddedBlocker(tmpdir());

describe("resolveDatabase", () => {
  test("an unreachable checkout is refused with a clear reason, not a crash", { skip: blocked === undefined && "this checkout is reachable" }, async () => {
    await assert.rejects(resolveDatabase({ dataDir: path.join(tmpdir(), "never-created"), localUrl: CLOSED, log: () => undefined }), /cannot enter/);
  });

  test("a given URL is used as is; the local server when it answers", async () => {
    const given = await resolveDatabase({ url: "postgres://u@db.example:5432/x", dataDir: "/nonexistent", log: () => undefined });
    assert.deepEqual([given.url, given.kind], ["postgres://u@db.example:5432/x", "postgres"]);
    const local = await resolveDatabase({ dataDir: "/nonexistent", log: () => undefined });
    assert.deepEqual([local.url, local.kind], ["postgres://postgres@127.0.0.1:5432/test", "postgres"]);
  });

  test("embedded: initialise once, start, stop, restart on existing data", { skip: blocked }, async () => {
    const dir = await tempDir();
    const logs: string[] = [];
    const db = await resolveDatabase({ dataDir: dir, localUrl: CLOSED, log: (m) => logs.push(m) });
    stops.push(db.stop);
    assert.equal(db.kind, "embedded");
    const info = await serverInfo(db.url);
    assert.match(info.version, /^16\./);
    assert.equal(info.listen, "127.0.0.1");
    assert.ok(logs.some((l) => l.includes("initialising")));
    assert.ok(logs.every((l) => !l.includes(new URL(db.url).password)), "the password never reaches the log");
    await db.stop();
    assert.equal(await refuses(db.url), true);

    logs.length = 0;
    const again = await resolveDatabase({ dataDir: dir, localUrl: CLOSED, log: (m) => logs.push(m) });
    stops.push(again.stop);
    assert.ok(!logs.some((l) => l.includes("initialising")), "existing data is not re-initialised");
    assert.equal(new URL(again.url).password, new URL(db.url).password);
    assert.match((await serverInfo(again.url)).version, /^16\./);
    await again.stop();
  });

  test("a host killed with SIGKILL: its server is reused, then stopped; a stale pid file is cleared", { skip: blocked }, async () => {
    const dir = await tempDir();
    const hostScript = path.join(dir, "host.mts");
    await writeFile(
      hostScript,
      `import { resolveDatabase } from ${JSON.stringify(DATABASE_TS)};\n` +
        `const db = await resolveDatabase({ dataDir: ${JSON.stringify(dir)}, localUrl: ${JSON.stringify(CLOSED)}, log: () => {} });\n` +
        `console.log(db.url);\nsetInterval(() => {}, 1 << 30);\n`,
    );
    const host = spawn(process.execPath, ["--import", "tsx", hostScript], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    const hostUrl = await firstLine(host);
    const pid = await pidOf(dir);
    host.kill("SIGKILL");
    await once(host, "exit");
    assert.match((await serverInfo(hostUrl)).version, /^16\./, "the orphaned server still runs");

    const logs: string[] = [];
    const reused = await resolveDatabase({ dataDir: dir, localUrl: CLOSED, log: (m) => logs.push(m) });
    stops.push(reused.stop);
    assert.equal(reused.url, hostUrl);
    assert.ok(logs.some((l) => l.includes(`reusing`) && l.includes(String(pid))), logs.join("\n"));
    await reused.stop();
    assert.equal(await refuses(hostUrl), true);
    assert.equal(existsSync(`/proc/${pid}`), false);

    // A pid file whose pid now belongs to another live process, not a postgres (a recycled pid). Postgres refuses to
    // start on such a file ("is another postmaster running?"); it must be cleared, and the process left alone.
    // Owned by the server's user, so postgres's own liveness check (kill 0) succeeds and it would refuse to start.
    const bystander = spawn("sleep", ["600"], serverUser());
    after(() => bystander.kill());
    await writeFile(path.join(dir, "cluster", "postmaster.pid"), `${bystander.pid}\n${path.join(dir, "cluster")}\n1700000000\n5999\n\n127.0.0.1\n`);
    logs.length = 0;
    const fresh = await resolveDatabase({ dataDir: dir, localUrl: CLOSED, log: (m) => logs.push(m) });
    stops.push(fresh.stop);
    assert.ok(logs.some((l) => l.includes("stale postmaster.pid")), logs.join("\n"));
    assert.match((await serverInfo(fresh.url)).version, /^16\./);
    assert.equal(bystander.exitCode, null, "the unrelated process was not signalled");
    await fresh.stop();
  });
});
