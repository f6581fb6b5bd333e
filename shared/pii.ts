/**
 * Personal data masked out of free text before it is logged: pino's `redact` works on keys, never on values inside
 * a sentence, so error messages, reasons and (on request) prompt and answer bodies pass through here. One regex with
 * one alternative per kind, so a text is scanned once; each match is replaced by a marker naming its kind.
 *
 * What is caught: emails; phone numbers written with a leading `+` (E.164, 8-15 digits, spaces, dots, dashes or
 * brackets between groups) or in the US forms (555) 123-4567, 555-123-4567, 555.123.4567; card numbers of 13-19
 * digits (spaces or dashes between groups allowed) that pass the Luhn check; national ids: US SSN (123-45-6789,
 * the invalid 000/666/9xx areas excepted) and UK National Insurance numbers (AB 12 34 56 C); IPv4 and IPv6 addresses
 * (an IPv6 address without a decimal digit, like a::b, is left: in text it is far more often code).
 * Not caught: bare 10-digit phone numbers (indistinguishable from ids and timestamps), names, postal addresses.
 */
import { isIPv6 } from "node:net";

const EMAIL = String.raw`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`;
// Before the phone forms: a card's groups would otherwise read as a phone number.
const CARD = String.raw`(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])`;
const SSN = String.raw`(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])`;
const NINO = String.raw`\b(?![DFIQUV])[A-CEGHJ-PR-TW-Z](?![DFIOQUV])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b`;
const OCTET = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`;
const IPV4 = String.raw`(?<![\d.])${OCTET}(?:\.${OCTET}){3}(?![\d]|\.\d)`;
// Candidates only: hex groups and at least two colons (an embedded IPv4 tail tried first); isIPv6 decides (times like
// 12:30:45 fail it), and one with no decimal digit (a::b, reading as code) is left.
const IPV6 = String.raw`(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:${OCTET}(?:\.${OCTET}){3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)`;
const PHONE_INTL = String.raw`(?<![\w+])\+\d(?:[ .-]?\(?\d\)?){6,16}(?!\d)`;
const PHONE_US = String.raw`(?<![\w+(-])(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4}(?![\d-])`;

const PII = new RegExp(
  `(?<email>${EMAIL})|(?<card>${CARD})|(?<ssn>${SSN})|(?<nino>${NINO})|(?<ipv6>${IPV6})|(?<ipv4>${IPV4})|(?<phone>${PHONE_INTL}|${PHONE_US})`,
  "g",
);
/** Nothing above matches a text without a digit, an `@` or a `:` (a NINO has digits): skip the scan. */
const MAYBE = /[\d@:]/;

const MARKERS = { email: "[email]", card: "[card]", ssn: "[national-id]", nino: "[national-id]", ipv6: "[ip]", ipv4: "[ip]", phone: "[phone]" } as const;
type Kind = keyof typeof MARKERS;

/** `text` with every email, phone, card number, national id and IP address replaced by a marker such as `[email]`. */
export function maskPii(text: string): string {
  if (!MAYBE.test(text)) return text;
  return text.replace(PII, (match: string, ...rest: unknown[]) => {
    const groups = rest[rest.length - 1] as Record<Kind, string | undefined>;
    const kind = (Object.keys(MARKERS) as Kind[]).find((k) => groups[k] !== undefined);
    if (kind === undefined) return match;
    if (kind === "card" && !luhn(match)) return match;
    if (kind === "ipv6" && !(/\d/.test(match) && isIPv6(match))) return match;
    if (kind === "phone" && !phoneDigits(match)) return match;
    return MARKERS[kind];
  });
}

/** The Luhn checksum over the digits of `s` (separators ignored). */
export function luhn(s: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    const d = double ? c * 2 : c;
    sum += d > 9 ? d - 9 : d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** E.164 allows at most 15 digits; fewer than 8 (with the + form) is more likely a code or a count. */
function phoneDigits(s: string): boolean {
  if (!s.startsWith("+")) return true;
  const n = s.replace(/\D/g, "").length;
  return n >= 8 && n <= 15;
}
