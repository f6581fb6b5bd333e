/**
 * Poison messages of several kinds, deterministic by index: not JSON, a JSON non-object, the wrong shape with an
 * id, an unknown contract version with an id, an over-size body with an id, and a valid shape without an id.
 */
import { MAX_JOB_BYTES } from "../../shared/contract.ts";

export interface PoisonBody {
  body: string;
  /** The request id a worker can recover from it, if any. */
  id?: string;
  kind: string;
}

export function poisonBodies(count: number): PoisonBody[] {
  const now = new Date(0).toISOString();
  return Array.from({ length: count }, (_, i): PoisonBody => {
    const id = `poison-${i}`;
    switch (i % 6) {
      case 0:
        return { kind: "not-json", body: `{"v":1,"id":"${id}", oops` };
      case 1:
        return { kind: "not-object", body: JSON.stringify([i, "array"]) };
      case 2:
        return { kind: "invalid", id, body: JSON.stringify({ v: 1, id, tenant: "t", created_at: now, prompt: 12 }) };
      case 3:
        return { kind: "unknown-version", id, body: JSON.stringify({ v: 99, id, tenant: "t" }) };
      case 4:
        return { kind: "over-size", id, body: JSON.stringify({ v: 1, id, tenant: "t", created_at: now, prompt: "x".repeat(MAX_JOB_BYTES) }) };
      default:
        return { kind: "no-id", body: JSON.stringify({ v: 1, tenant: "t", created_at: now, prompt: "hello" }) };
    }
  });
}
