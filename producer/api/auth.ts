/**
 * `Authorization: Bearer <key>`, as OpenAI's API: a missing, unknown or revoked key is a 401 (`invalid_api_key`)
 * and the request goes no further. An accepted request carries its tenant (`request.tenant`) and key id; every
 * read and write below is scoped by that tenant, never by anything the body says.
 */
import type { FastifyRequest } from "fastify";
import { hashKey, type ApiKeyStore, type KeyOwner } from "./api-keys.ts";
import { ApiError } from "./errors.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The tenant of the API key that authenticated this request ("" before authentication). */
    tenant: string;
    /** The id (not the secret) of that key: the rate limit's bucket. */
    apiKeyId: string;
  }
}

/** Keys remembered per replica at most; beyond it the oldest are dropped (a flood of random keys cannot grow memory). */
const MAX_CACHED_KEYS = 10_000;

/**
 * Key lookups with a short memory: for `ttlMs` a replica answers a key (or its absence) without asking Postgres, so
 * a revoked key still works there that long at most. Keyed by the key's hash; the key itself is never kept.
 */
export class KeyAuthenticator {
  private readonly cache = new Map<string, { owner: KeyOwner | undefined; until: number }>();

  constructor(
    private readonly keys: Pick<ApiKeyStore, "owner">,
    private readonly ttlMs: number,
  ) {}

  async owner(key: string): Promise<KeyOwner | undefined> {
    if (this.ttlMs === 0) return this.keys.owner(key);
    const now = performance.now();
    const id = hashKey(key).toString("base64");
    const hit = this.cache.get(id);
    if (hit !== undefined && hit.until > now) return hit.owner;
    const owner = await this.keys.owner(key);
    this.cache.delete(id);
    if (this.cache.size >= MAX_CACHED_KEYS) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(id, { owner, until: now + this.ttlMs });
    return owner;
  }

  /** The onRequest hook: sets request.tenant and request.apiKeyId, or answers 401. */
  readonly hook = async (request: FastifyRequest): Promise<void> => {
    const key = bearer(request.headers.authorization);
    if (key === undefined) {
      throw unauthorized("You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'.");
    }
    const owner = await this.owner(key);
    if (owner === undefined) throw unauthorized("Incorrect API key provided.");
    request.tenant = owner.tenant;
    request.apiKeyId = owner.keyId;
  };
}

function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

// Never echoes the key: it may be a real key sent to the wrong place.
function unauthorized(message: string): ApiError {
  return new ApiError(401, { message, type: "invalid_request_error", param: null, code: "invalid_api_key" });
}
