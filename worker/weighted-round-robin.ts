/**
 * Smooth weighted round robin (nginx's upstream balancer): deterministic, and the picks of each item are spread
 * evenly over the cycle instead of bunched (weights 4:2:1 give 0,1,0,2,0,1,0, never 0,0,0,0,1,1,2). Over any
 * window of sum(weights) picks, item i is picked exactly weights[i] times.
 */
export class WeightedRoundRobin {
  private readonly current: number[];
  private readonly total: number;

  constructor(private readonly weights: readonly number[]) {
    if (weights.length === 0 || weights.some((w) => !Number.isInteger(w) || w < 1)) {
      throw new RangeError(`weights must be positive integers, got [${weights.join(", ")}]`);
    }
    this.current = weights.map(() => 0);
    this.total = weights.reduce((a, b) => a + b, 0);
  }

  /** The index of the next pick. */
  next(): number {
    let best = 0;
    for (let i = 0; i < this.weights.length; i++) {
      this.current[i]! += this.weights[i]!;
      if (this.current[i]! > this.current[best]!) best = i;
    }
    this.current[best]! -= this.total;
    return best;
  }
}

/** The default shares of n priority classes, highest first: 2^(n-1-i), so each class gets twice the next one. */
export function defaultClassWeights(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 2 ** (n - 1 - i));
}
