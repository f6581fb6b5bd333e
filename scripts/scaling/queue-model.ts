/**
 * The queue as a FIFO fluid, stepped one minute at a time.
 *
 * Inside minute k jobs arrive at a constant rate a_k (jobs/min) and InService workers start jobs at up to c_k
 * (jobs/min). Cumulative arrivals A(t) and cumulative starts S(t) are piecewise linear, so everything is exact for
 * the fluid: the visible depth is A(t) − S(t); the job with index x arrives at A⁻¹(x) and starts at S⁻¹(x), so its
 * queue wait is S⁻¹(x) − A⁻¹(x) — the wait "by queue position". Between breakpoints that wait is linear in x, so
 * the waits of a stretch of jobs are uniformly distributed between its end values: the distribution is recorded as
 * such segments and percentiles are exact mixtures, not samples.
 *
 * SQS is not strictly FIFO (a standard queue reorders a little); the fluid ignores that, and ignores the time a job
 * spends in flight (its processing), which is not queue wait. In-flight jobs are estimated separately (Little's law).
 */

/** A stretch of `jobs` jobs whose waits (minutes) run linearly from `fromWait` to `toWait`. */
export interface WaitSegment {
  jobs: number;
  fromWait: number;
  toWait: number;
}

export interface MinuteOutcome {
  /** Jobs that started (left the visible queue) during the minute. */
  started: number;
  /** Start rate at the end of the minute (jobs/min): what the workers hold in flight, by Little's law. */
  endStartRate: number;
  /** Visible depth at the end of the minute. */
  depth: number;
  /** Age of the oldest visible job at the end of the minute (minutes; 0 when empty): ApproximateAgeOfOldestMessage. */
  oldestAgeMinutes: number;
  /** Mean wait of the jobs that started this minute (minutes; 0 when none started). */
  meanWaitMinutes: number;
}

const EPSILON = 1e-9;

export class FluidQueue {
  /** cumArrivals[k] = jobs arrived before minute k. */
  private readonly cumArrivals: number[] = [0];
  private readonly rates: number[] = [];
  private started = 0;
  private minute = 0;
  /** Minute index into `rates` holding the head of the queue (the next job to start). */
  private headMinute = 0;
  readonly waits: WaitSegment[] = [];

  /** Advance one minute with `arrivals` jobs arriving and capacity to start `capacity` jobs. */
  step(arrivals: number, capacity: number): MinuteOutcome {
    const k = this.minute;
    const arrivedBefore = this.cumArrivals[k] ?? 0;
    this.rates.push(arrivals);
    this.cumArrivals.push(arrivedBefore + arrivals);
    const queued = arrivedBefore - this.started;
    const startedBefore = this.started;
    const waitsBefore = this.waits.length;

    let endStartRate: number;
    if (queued > EPSILON) {
      if (capacity <= arrivals) {
        this.serve(k, 0, 1, capacity);
        endStartRate = capacity;
      } else {
        // Serve flat out until the backlog is gone, then keep pace with arrivals.
        const emptyAt = Math.min(1, queued / (capacity - arrivals));
        this.serve(k, 0, emptyAt, capacity);
        if (emptyAt < 1) this.serve(k, emptyAt, 1, arrivals);
        endStartRate = emptyAt < 1 ? arrivals : capacity;
      }
    } else {
      this.started = arrivedBefore; // drop rounding dust
      const rate = Math.min(arrivals, capacity);
      this.serve(k, 0, 1, rate);
      endStartRate = rate;
    }
    this.minute++;
    const started = this.started - startedBefore;
    let waitedJobMinutes = 0;
    for (let i = waitsBefore; i < this.waits.length; i++) {
      const s = this.waits[i]!;
      waitedJobMinutes += (s.jobs * (s.fromWait + s.toWait)) / 2;
    }
    return {
      started,
      endStartRate,
      depth: this.depth(),
      oldestAgeMinutes: this.oldestAgeMinutes(),
      meanWaitMinutes: started > EPSILON ? waitedJobMinutes / started : 0,
    };
  }

  depth(): number {
    return Math.max(0, (this.cumArrivals[this.minute] ?? 0) - this.started);
  }

  /** Age of the job at the head of the queue, now (the end of the last stepped minute). */
  oldestAgeMinutes(): number {
    if (this.depth() <= EPSILON) return 0;
    return this.minute - this.arrivalIn(this.advanceHead(this.started), this.started);
  }

  /**
   * Wait segments of the jobs still queued, as if they started now: a lower bound on their wait. Reported with the
   * served jobs so that a queue that never drains still shows in the percentiles.
   */
  pendingWaits(): WaitSegment[] {
    const now = this.minute;
    const end = this.cumArrivals[now] ?? 0;
    const segments: WaitSegment[] = [];
    for (let m = this.headMinute, x = this.started; m < now && x < end - EPSILON; m++) {
      const segEnd = this.cumArrivals[m + 1] ?? end;
      if (segEnd - x <= EPSILON) continue;
      segments.push({ jobs: segEnd - x, fromWait: now - this.arrivalIn(m, x), toWait: now - (m + 1) });
      x = segEnd;
    }
    return segments;
  }

  /** Jobs start at `rate` from minute+from to minute+to; record their waits, split at arrival-minute boundaries. */
  private serve(k: number, from: number, to: number, rate: number): void {
    const xStart = this.started;
    // Never start more than has arrived (guards float dust from the emptying-time division).
    const xEnd = Math.min(xStart + rate * (to - from), this.cumArrivals[k + 1] ?? 0);
    if (xEnd - xStart <= EPSILON) return;
    const startTimeOf = (x: number) => k + from + (x - xStart) / rate;
    for (let x = xStart; x < xEnd - EPSILON; ) {
      const m = this.advanceHead(x);
      const segEnd = Math.min(xEnd, this.cumArrivals[m + 1] ?? xEnd);
      this.waits.push({
        jobs: segEnd - x,
        fromWait: Math.max(0, startTimeOf(x) - this.arrivalIn(m, x)),
        toWait: Math.max(0, startTimeOf(segEnd) - this.arrivalIn(m, segEnd)),
      });
      x = segEnd;
    }
    this.started = xEnd;
  }

  /** Move the head past minutes whose jobs have all started (and empty minutes); returns job x's arrival minute. */
  private advanceHead(x: number): number {
    while (this.headMinute < this.minute && (this.cumArrivals[this.headMinute + 1] ?? Infinity) <= x + EPSILON) this.headMinute++;
    return this.headMinute;
  }

  /** A⁻¹(x) for a job x that arrived in minute m (arrivals are spread evenly over the minute). */
  private arrivalIn(m: number, x: number): number {
    const rate = this.rates[m] ?? 0;
    if (rate <= EPSILON) return m;
    return m + Math.min(1, Math.max(0, (x - (this.cumArrivals[m] ?? 0)) / rate));
  }
}
