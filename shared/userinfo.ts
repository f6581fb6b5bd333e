/**
 * URLs without their credentials. A connection string (postgres://user:pass@host, redis://:pass@host, any
 * scheme://user:pass@) may reach a log line or an error message through a driver's error, a config echo or a
 * stack; these two functions are the one place the `user:password@` part is cut.
 */

/**
 * scheme://userinfo@ anywhere in free text. The userinfo runs to the last `@` before a space, `/`, `?` or `#`, so a
 * password holding a raw `@` (invalid, but pg and ioredis accept it) is cut whole rather than half.
 */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi;
/** The replacement keeps the scheme so a reader still sees which connection it was. */
const CUT = "$1[redacted]@";

/** `text` with the credentials of every URL in it replaced by `[redacted]`; the same string when there are none. */
export function stripUserInfo(text: string): string {
  // Cheap test first: nearly every logged string has no "://" at all.
  if (!text.includes("://")) return text;
  USERINFO.lastIndex = 0;
  return USERINFO.test(text) ? text.replace(USERINFO, CUT) : text;
}

/** An endpoint to show: scheme, host and path, without userinfo, query or fragment; unparsable text is stripped instead. */
export function withoutUserInfo(endpoint: string): string {
  if (!URL.canParse(endpoint)) return stripUserInfo(endpoint);
  const u = new URL(endpoint);
  // Not `origin`: it is "null" for schemes URL does not know (postgres:, redis:).
  return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
}
