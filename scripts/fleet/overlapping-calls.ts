/**
 * Were two provider calls for the same job in flight at once? That is what a lost lease, a double claim or a
 * redelivery racing a live worker looks like from the backend: the same request id on overlapping intervals.
 */
import { PROBE_REQUEST_ID } from "../../shared/providers/router.ts";

export interface CallInterval {
  requestId?: string;
  startedAt: number;
  endedAt: number;
}

/**
 * The job ids that had at least two calls overlapping in time, sorted. Calls without an id are ignored; intervals
 * that only touch (one ends exactly when the next starts) do not overlap.
 */
export function overlappingCallIds(calls: Iterable<CallInterval>): string[] {
  const byId = new Map<string, CallInterval[]>();
  for (const call of calls) {
    // Without an id, or the router's idle probe (one token, no job): not a job's call.
    if (call.requestId === undefined || call.requestId === "" || call.requestId === PROBE_REQUEST_ID) continue;
    const list = byId.get(call.requestId);
    if (list === undefined) byId.set(call.requestId, [call]);
    else list.push(call);
  }
  const overlapping: string[] = [];
  for (const [id, list] of byId) {
    if (list.length < 2) continue;
    list.sort((a, b) => a.startedAt - b.startedAt);
    // A sweep: a call overlaps an earlier one when it starts before the latest end seen so far.
    let latestEnd = -Infinity;
    for (const call of list) {
      if (call.startedAt < latestEnd) {
        overlapping.push(id);
        break;
      }
      latestEnd = Math.max(latestEnd, call.endedAt);
    }
  }
  return overlapping.sort();
}
