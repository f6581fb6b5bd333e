/**
 * API keys for the Results API (`make keys ARGS="..."`, DATABASE_URL set; the store is migrated first).
 *   create --tenant NAME   a new key; the key is the last line printed (shown once, only its hash is kept). The
 *                          tenant's first key also prints its webhook signing secret (shown once too).
 *   list [--tenant NAME]   one JSON line per key: id, prefix, tenant, created_at, revoked_at — never the key
 *   revoke KEY_ID          revoked at once in Postgres; replicas that looked it up lately accept it up to
 *                          API_KEY_CACHE_TTL_MS longer
 * Exit codes: 0 ok; 1 no such key (revoke); 2 usage or other error; 3 the store is unreachable.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../../shared/config.ts";
import { StoreError } from "../../shared/errors.ts";
import { migrate } from "../../shared/store/migrate.ts";
import { createPool } from "../../shared/store/pool.ts";
import { ApiKeyStore, InvalidTenantError } from "./api-keys.ts";

const USAGE = `usage:
  create --tenant NAME
  list [--tenant NAME]
  revoke KEY_ID`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!["create", "list", "revoke"].includes(command)) throw new UsageError(`unknown command ${command}`);
  if (command === "create" && values.tenant === undefined) throw new UsageError("create needs --tenant NAME");
  if (command === "revoke" && rest.length !== 1) throw new UsageError("revoke needs exactly one key id");
  const config = loadConfig();
  if (config.store.databaseUrl === undefined) throw new UsageError("DATABASE_URL is required");
  const pool = await createPool({ url: config.store.databaseUrl, poolSize: 2 });
  try {
    await migrate(pool);
    const keys = new ApiKeyStore(pool);
    switch (command) {
      case "create": {
        const k = await keys.create(values.tenant!);
        process.stdout.write(`key id: ${k.id} (tenant ${k.tenant}); the key is shown once, below\n`);
        if (k.webhookSecret !== undefined) process.stdout.write(`webhook signing secret for tenant ${k.tenant} (shown once): ${k.webhookSecret}\n`);
        process.stdout.write(`${k.key}\n`);
        return 0;
      }
      case "list":
        for (const k of await keys.list(values.tenant)) {
          process.stdout.write(`${JSON.stringify({ id: k.id, prefix: k.prefix, tenant: k.tenant, created_at: k.createdAt.toISOString(), revoked_at: k.revokedAt?.toISOString() ?? null })}\n`);
        }
        return 0;
      default: {
        const revoked = await keys.revoke(rest[0]!);
        process.stdout.write(revoked ? `revoked ${rest[0]}\n` : "");
        if (!revoked) process.stderr.write(`no active key with id ${rest[0]}\n`);
        return revoked ? 0 : 1;
      }
    }
  } finally {
    await pool.end();
  }
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: { tenant: { type: "string" }, help: { type: "boolean" } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const usage = err instanceof UsageError || err instanceof InvalidTenantError;
    process.stderr.write(`${usage ? `${err.message}\n${USAGE}` : err.message}\n`);
    process.exit(err instanceof StoreError && err.code === "STORE_UNAVAILABLE" ? 3 : 2);
  },
);
