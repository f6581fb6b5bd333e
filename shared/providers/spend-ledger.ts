/**
 * What paid providers have cost this hour, so a spend ceiling holds: the port, and the in-process ledger (one
 * worker's spend; tests and single-worker setups). RedisSpendLedger (redis-spend-ledger.ts) is the fleet-wide one.
 *
 * A call reserves its estimated cost before it is made and is corrected with its real cost after, so concurrent
 * calls cannot all slip under the ceiling together: the overshoot is bounded by one estimate's error per call.
 */
export interface SpendLedger {
  /**
   * Adds `usd` to `provider`'s spend in `hour` unless the total would pass `ceilingUsd`. Resolves whether it was
   * added and the hour's total after. Rejects when the ledger cannot be reached.
   */
  reserve(provider: string, hour: number, usd: number, ceilingUsd: number): Promise<{ ok: boolean; spentUsd: number }>;
  /** Adds `deltaUsd` (negative gives back) to `provider`'s spend in `hour`; resolves the total. */
  add(provider: string, hour: number, deltaUsd: number): Promise<number>;
  close?(): Promise<void>;
}

/** The hour a spend counts in: whole UTC hours since the epoch. */
export function hourOf(epochMs: number): number {
  return Math.floor(epochMs / 3_600_000);
}

export class InProcessSpendLedger implements SpendLedger {
  private readonly spent = new Map<string, number>();

  async reserve(provider: string, hour: number, usd: number, ceilingUsd: number): Promise<{ ok: boolean; spentUsd: number }> {
    const now = this.total(provider, hour);
    if (now + usd > ceilingUsd) return { ok: false, spentUsd: now };
    return { ok: true, spentUsd: this.set(provider, hour, now + usd) };
  }

  async add(provider: string, hour: number, deltaUsd: number): Promise<number> {
    return this.set(provider, hour, this.total(provider, hour) + deltaUsd);
  }

  private total(provider: string, hour: number): number {
    return this.spent.get(`${provider}:${hour}`) ?? 0;
  }

  private set(provider: string, hour: number, usd: number): number {
    // Only the current hour matters: drop the others so a long-lived worker does not keep every hour it has seen.
    for (const key of this.spent.keys()) if (!key.endsWith(`:${hour}`)) this.spent.delete(key);
    this.spent.set(`${provider}:${hour}`, usd);
    return usd;
  }
}
