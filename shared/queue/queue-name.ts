/** A queue's name: the last segment of its URL (what a person reads; the account id and endpoint stay out). */
export function queueNameOf(url: string): string {
  return url.replace(/\/+$/, "").split("/").pop() || url;
}
