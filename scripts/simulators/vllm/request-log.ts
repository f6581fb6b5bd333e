/**
 * A bounded record of generation requests, for audits that ask "which calls were in flight when" (the fault suite
 * checks that no job had two provider calls at once). A ring of the last `capacity` requests: memory stays fixed
 * however long the server runs; `dropped` says how many older ones fell out.
 */

/** served: 2xx written; error: an error status written; aborted: the connection closed first; reset: injected reset. */
export type RequestOutcome = "served" | "error" | "aborted" | "reset";

export interface RequestLogEntry {
  /** The client's X-Request-Id; absent when it sent none. */
  requestId?: string;
  /** The client's W3C traceparent header; absent when it sent none. */
  traceparent?: string;
  /** Epoch milliseconds (sub-millisecond precision) when the request reached the handler / when it ended. */
  startedAt: number;
  endedAt: number;
  outcome: RequestOutcome;
  /** The HTTP status written, when one was. */
  status?: number;
}

export interface RequestLogSnapshot {
  /** 0 when the log is off. */
  capacity: number;
  /** Requests recorded since start, including dropped ones. */
  recorded: number;
  dropped: number;
  /** Oldest first. */
  entries: RequestLogEntry[];
}

/** Epoch ms from the monotonic clock: comparable across simulators in one process and across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export class RequestLog {
  private readonly ring: (RequestLogEntry | undefined)[];
  private recorded = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<RequestLogEntry | undefined>(capacity);
  }

  get enabled(): boolean {
    return this.capacity > 0;
  }

  record(entry: RequestLogEntry): void {
    if (this.capacity === 0) return;
    this.ring[this.recorded % this.capacity] = entry;
    this.recorded++;
  }

  snapshot(): RequestLogSnapshot {
    const kept = Math.min(this.recorded, this.capacity);
    const first = this.recorded - kept;
    const entries: RequestLogEntry[] = [];
    for (let i = first; i < this.recorded; i++) entries.push(this.ring[i % this.capacity]!);
    return { capacity: this.capacity, recorded: this.recorded, dropped: first, entries };
  }
}
