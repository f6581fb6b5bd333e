/**
 * `make keys`' CLI against a real Postgres schema: create prints the key on its last line (and the tenant's
 * signing secret the first time), list never shows a key, revoke stops it.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ApiKeyStore } from "../producer/api/api-keys.ts";
import { schemaScopedUrl } from "../shared/store/pool.ts";
import { storeFixture, type StoreFixture } from "./support/env.ts";

const run = promisify(execFile);
const fixtures: StoreFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

function keys(s: StoreFixture, ...args: string[]) {
  const env = { PATH: process.env.PATH, DATABASE_URL: schemaScopedUrl(s.url, s.schema), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  return run(process.execPath, ["--import", "tsx", "producer/api/keys-cli.ts", ...args], { env }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

test("keys create / list / revoke", async () => {
  const s = await storeFixture();
  fixtures.push(s);
  const created = await keys(s, "create", "--tenant", "cli-co");
  assert.equal(created.code, 0, created.stderr);
  const lines = created.stdout.trim().split("\n");
  const key = lines.at(-1)!;
  assert.match(key, /^sk-fleet-[A-Za-z0-9_-]{43}$/);
  assert.match(created.stdout, /webhook signing secret for tenant cli-co \(shown once\): whsec_/);
  assert.equal((await new ApiKeyStore(s.pool).owner(key))?.tenant, "cli-co");

  const second = await keys(s, "create", "--tenant", "cli-co");
  assert.doesNotMatch(second.stdout, /whsec_/, "the secret is shown with the tenant's first key only");

  const listed = await keys(s, "list");
  const rows = listed.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; prefix: string; tenant: string; revoked_at: string | null });
  assert.equal(rows.length, 2);
  assert.ok(!listed.stdout.includes(key), "list never shows a key");
  assert.ok(key.startsWith(rows[0]!.prefix));

  const revoked = await keys(s, "revoke", rows[0]!.id);
  assert.equal(revoked.code, 0);
  assert.equal(await new ApiKeyStore(s.pool).owner(key), undefined);
  assert.equal((await keys(s, "revoke", rows[0]!.id)).code, 1, "already revoked");
  assert.equal((await keys(s, "create")).code, 2, "create without --tenant is a usage error");
  assert.equal((await keys(s, "create", "--tenant", "bad tenant!")).code, 2);
});
