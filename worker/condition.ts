/**
 * Waiting for state to change without polling: `waitUntil(test, signal)` resolves once `test()` holds (checked on
 * every `notify()`), or when `signal` aborts. Listeners are removed as each wait ends.
 */
export class Condition {
  private waiters = new Set<() => void>();

  notify(): void {
    for (const w of [...this.waiters]) w();
  }

  async waitUntil(test: () => boolean, signal: AbortSignal): Promise<void> {
    while (!test() && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.waiters.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}
