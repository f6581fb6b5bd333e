/**
 * Webhook signatures: `X-Fleet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the
 * tenant's signing secret (the `whsec_...` string as UTF-8). The timestamp is signed too, so a receiver that
 * refuses old ones (verifyWebhook's tolerance) cannot be sent a captured delivery again later.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-fleet-signature";
/** Receivers' default window for the signed timestamp, s. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function signWebhook(secret: string, body: string, unixSeconds: number = Math.floor(Date.now() / 1000)): string {
  return `t=${unixSeconds},v1=${hmac(secret, unixSeconds, body)}`;
}

/** True when `header` carries a valid v1 signature of `body` made within `toleranceSeconds` of `nowSeconds`. */
export function verifyWebhook(secret: string, header: string | undefined, body: string, o: { toleranceSeconds?: number; nowSeconds?: number } = {}): boolean {
  if (header === undefined) return false;
  const parts = new Map<string, string[]>();
  for (const item of header.split(",")) {
    const [k, v] = item.trim().split("=", 2);
    if (k && v) parts.set(k, [...(parts.get(k) ?? []), v]);
  }
  const t = Number(parts.get("t")?.[0]);
  if (!Number.isInteger(t)) return false;
  const now = o.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (o.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false;
  const expected = Buffer.from(hmac(secret, t, body), "hex");
  // Several v1 values are allowed (a secret being rotated); any one matching is enough.
  return (parts.get("v1") ?? []).some((v) => {
    const given = Buffer.from(v, "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function hmac(secret: string, t: number, body: string): string {
  return createHmac("sha256", secret).update(`${t}.${body}`, "utf8").digest("hex");
}
