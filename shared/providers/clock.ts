/**
 * Time as the router sees it: injected so tests drive breaker cool-downs, backoff and rate limits without waiting.
 */
import { delay } from "../backoff.ts";

export interface Clock {
  /** Epoch ms. */
  now(): number;
  /** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, signal),
};
