/**
 * Tenants' API keys and webhook signing secrets (tables in migration 0006). A key is `sk-fleet-` + 256 random bits;
 * only its SHA-256 is stored. A slow password hash (bcrypt, scrypt) would buy nothing here: its cost protects
 * guessable passwords, and nobody guesses 256 random bits, however fast the hash. It would cost ~100 ms of CPU per
 * request and need a per-key salt, so the key could no longer be found by one index lookup on its hash.
 */
import { createHash, randomBytes } from "node:crypto";
import type pg from "pg";
import { TENANT_PATTERN } from "../../shared/contract.ts";
import { toStoreError } from "../../shared/store/store-errors.ts";

const KEY_PREFIX = "sk-fleet-";
/** Characters of the key shown in listings: the marker and 6 random characters (36 bits: recognisable, not guessable). */
const SHOWN_CHARS = KEY_PREFIX.length + 6;

export interface CreatedKey {
  id: string;
  tenant: string;
  /** The key itself: shown once, never stored. */
  key: string;
  prefix: string;
  createdAt: Date;
  /** The tenant's webhook signing secret, when this call created the tenant (its first key); otherwise absent. */
  webhookSecret?: string;
}

export interface KeyInfo {
  id: string;
  tenant: string;
  prefix: string;
  createdAt: Date;
  revokedAt?: Date;
}

export interface KeyOwner {
  keyId: string;
  tenant: string;
}

export class InvalidTenantError extends Error {
  readonly code = "INVALID_TENANT";
}

export function hashKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

export class ApiKeyStore {
  constructor(private readonly pool: pg.Pool) {}

  /** A new key for `tenant`, creating the tenant (and its signing secret) on its first key. */
  async create(tenant: string): Promise<CreatedKey> {
    if (!TENANT_PATTERN.test(tenant) || tenant.length > 64) throw new InvalidTenantError("tenant must be 1-64 characters of [A-Za-z0-9._-]");
    const key = KEY_PREFIX + randomBytes(32).toString("base64url");
    const id = `key_${randomBytes(8).toString("hex")}`;
    const secret = `whsec_${randomBytes(32).toString("base64url")}`;
    const client = await this.connect();
    let broken = false;
    try {
      await client.query("BEGIN");
      const created = await client.query<{ webhook_secret: string }>(
        "INSERT INTO api_tenants (tenant, webhook_secret) VALUES ($1, $2) ON CONFLICT (tenant) DO NOTHING RETURNING webhook_secret",
        [tenant, secret],
      );
      const row = await client.query<{ created_at: Date }>(
        "INSERT INTO api_keys (id, tenant, key_hash, prefix) VALUES ($1, $2, $3, $4) RETURNING created_at",
        [id, tenant, hashKey(key), key.slice(0, SHOWN_CHARS)],
      );
      await client.query("COMMIT");
      return { id, tenant, key, prefix: key.slice(0, SHOWN_CHARS), createdAt: row.rows[0]!.created_at, webhookSecret: created.rows[0]?.webhook_secret };
    } catch (err) {
      broken = await client.query("ROLLBACK").then(() => false, () => true);
      throw toStoreError(err, "api_keys_create");
    } finally {
      client.release(broken);
    }
  }

  /** Every key (or one tenant's), oldest first; never the key itself. */
  async list(tenant?: string): Promise<KeyInfo[]> {
    const rows = await this.query<{ id: string; tenant: string; prefix: string; created_at: Date; revoked_at: Date | null }>(
      "api_keys_list",
      "SELECT id, tenant, prefix, created_at, revoked_at FROM api_keys WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id",
      [tenant ?? null],
    );
    return rows.map((r) => ({ id: r.id, tenant: r.tenant, prefix: r.prefix, createdAt: r.created_at, ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}) }));
  }

  /** Revoke by id; false when there is no such key, or it was already revoked. */
  async revoke(id: string): Promise<boolean> {
    const rows = await this.query("api_keys_revoke", "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id", [id]);
    return rows.length > 0;
  }

  /** Who a presented key belongs to; undefined for an unknown or revoked key. */
  async owner(key: string): Promise<KeyOwner | undefined> {
    const rows = await this.query<{ id: string; tenant: string }>(
      "api_keys_owner",
      "SELECT id, tenant FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
      [hashKey(key)],
    );
    const r = rows[0];
    return r && { keyId: r.id, tenant: r.tenant };
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw toStoreError(err, "api_keys");
    }
  }

  private async query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>({ name, text, values })).rows;
    } catch (err) {
      throw toStoreError(err, name);
    }
  }
}
