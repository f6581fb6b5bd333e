/**
 * The longest a received message had waited in its queue (SentTimestamp → receive), per queue, over a recent
 * window. SQS reports the age of the oldest message only to CloudWatch (ApproximateAgeOfOldestMessage), and
 * peeking would spend a delivery, so this is the fleet's stand-in: while workers keep up it is the head of the queue's
 * age; while nobody receives it says nothing (no value) rather than something stale.
 */
export class QueueWaits {
  /** Two buckets: a value is kept between one and two windows, so a reader never sees a freshly emptied one. */
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private rolledAt: number;

  constructor(
    private readonly windowMs: number,
    now = Date.now(),
  ) {
    this.rolledAt = now;
  }

  note(queueUrl: string, sentAt: number | undefined, now = Date.now()): void {
    if (sentAt === undefined) return;
    this.roll(now);
    const waited = Math.max(0, now - sentAt);
    if (waited > (this.current.get(queueUrl) ?? -1)) this.current.set(queueUrl, waited);
  }

  /** Longest wait per queue URL seen in the last one to two windows, ms. */
  longest(now = Date.now()): Record<string, number> {
    this.roll(now);
    const out: Record<string, number> = Object.fromEntries(this.previous);
    for (const [url, ms] of this.current) out[url] = Math.max(ms, out[url] ?? 0);
    return out;
  }

  private roll(now: number): void {
    const windows = Math.floor((now - this.rolledAt) / this.windowMs);
    if (windows <= 0) return;
    this.previous = windows === 1 ? this.current : new Map();
    this.current = new Map();
    this.rolledAt += windows * this.windowMs;
  }
}
