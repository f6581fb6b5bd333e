/**
 * CloudWatch metric alarms, replayed on per-minute datapoints.
 *
 * Semantics modelled (CloudWatch user guide, "Evaluating an alarm"):
 * - SQS publishes one datapoint a minute; a custom metric (backlog per instance) is published the same way.
 * - An alarm aggregates the datapoints of each `period` (aligned to the start of the simulation, as CloudWatch
 *   aligns periods to the clock) with its `statistic`, and looks at the last `evaluationPeriods` complete periods.
 *   It is in ALARM when at least `datapointsToAlarm` (default: all) of them breach the threshold, OK otherwise.
 * - A period with no datapoint (e.g. backlog ÷ 0 InService instances) follows the alarm's treat_missing_data:
 *   "breaching" / "notBreaching" count it as such; "missing" (the default) skips it, and when every period in the
 *   window is missing the alarm is INSUFFICIENT_DATA, which triggers no action. Periods before the run starts are
 *   always skipped (the run starts with no history), so an alarm needs `evaluationPeriods` periods of the run
 *   before it can fire.
 * - Datapoints arrive `lagMinutes` after the minute they describe (SQS metrics are not instant).
 * - Alarms are evaluated every minute; an Auto Scaling action is invoked on every evaluation that finds the alarm in
 *   ALARM, not only on the transition (CloudWatch documents this exception for Auto Scaling actions).
 */

export type Statistic = "Average" | "Maximum" | "Minimum" | "Sum" | "SampleCount";
export type Comparison =
  | "GreaterThanThreshold"
  | "GreaterThanOrEqualToThreshold"
  | "LessThanThreshold"
  | "LessThanOrEqualToThreshold";
export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";

export interface AlarmSpec {
  name: string;
  statistic: Statistic;
  periodSeconds: number;
  evaluationPeriods: number;
  /** M of N; defaults to evaluationPeriods. */
  datapointsToAlarm?: number;
  threshold: number;
  comparison: Comparison;
  /** Default "missing". */
  treatMissingData?: "missing" | "breaching" | "notBreaching";
}

export interface AlarmEvaluation {
  state: AlarmState;
  /** The statistic of the newest complete period (undefined when missing): what a step policy compares. */
  latestValue: number | undefined;
}

/**
 * Evaluate `spec` over `datapoints` (index = minute; undefined = missing) as CloudWatch would at the end of minute
 * `nowMinute`, seeing only datapoints of minutes ≤ nowMinute − lagMinutes.
 */
export function evaluateAlarm(
  spec: AlarmSpec,
  datapoints: ReadonlyArray<number | undefined>,
  nowMinute: number,
  lagMinutes: number,
): AlarmEvaluation {
  const periodMinutes = spec.periodSeconds / 60;
  const lastVisible = nowMinute - lagMinutes;
  // Index of the newest period whose every minute is visible.
  const newestPeriod = Math.floor((lastVisible + 1) / periodMinutes) - 1;
  let breaching = 0;
  let present = 0;
  let latestValue: number | undefined;
  for (let p = newestPeriod; p > newestPeriod - spec.evaluationPeriods; p--) {
    const value = p < 0 ? undefined : periodStatistic(spec.statistic, datapoints, p * periodMinutes, periodMinutes);
    if (p === newestPeriod) latestValue = value;
    if (value === undefined) {
      const treat = spec.treatMissingData ?? "missing";
      if (p < 0 || treat === "missing") continue;
      present++;
      if (treat === "breaching") breaching++;
      continue;
    }
    present++;
    if (breaches(spec.comparison, value, spec.threshold)) breaching++;
  }
  if (present === 0) return { state: "INSUFFICIENT_DATA", latestValue };
  const needed = spec.datapointsToAlarm ?? spec.evaluationPeriods;
  return { state: breaching >= needed ? "ALARM" : "OK", latestValue };
}

function periodStatistic(
  statistic: Statistic,
  datapoints: ReadonlyArray<number | undefined>,
  firstMinute: number,
  minutes: number,
): number | undefined {
  const values: number[] = [];
  for (let m = firstMinute; m < firstMinute + minutes; m++) {
    const v = datapoints[m];
    if (v !== undefined) values.push(v);
  }
  if (values.length === 0) return undefined;
  switch (statistic) {
    case "Average":
      return values.reduce((a, b) => a + b, 0) / values.length;
    case "Sum":
      return values.reduce((a, b) => a + b, 0);
    case "Maximum":
      return Math.max(...values);
    case "Minimum":
      return Math.min(...values);
    case "SampleCount":
      return values.length;
  }
}

function breaches(comparison: Comparison, value: number, threshold: number): boolean {
  switch (comparison) {
    case "GreaterThanThreshold":
      return value > threshold;
    case "GreaterThanOrEqualToThreshold":
      return value >= threshold;
    case "LessThanThreshold":
      return value < threshold;
    case "LessThanOrEqualToThreshold":
      return value <= threshold;
  }
}
