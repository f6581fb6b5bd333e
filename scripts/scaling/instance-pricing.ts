/**
 * On-demand hourly prices (USD, Linux, us-east-1) of the GPU instance types a worker may run on, with the date the
 * table was taken: every report prints it, because these prices move. EC2 bills per second (one-minute minimum),
 * so cost = instance-minutes × hourly price ÷ 60. Pass `--price` for what you actually pay (other region, savings
 * plans, reserved, spot); the report then dates the price to the run.
 *
 * P4 and P5: AWS cut On-Demand prices from 1 June 2025 — P5 by 44 %, P4d and P4de by 33 % ("Announcing up to 45%
 * price reduction for Amazon EC2 NVIDIA GPU-accelerated instances", AWS News Blog, 5 June 2025,
 * https://aws.amazon.com/blogs/aws/announcing-up-to-45-price-reduction-for-amazon-ec2-nvidia-gpu-accelerated-instances/).
 * p5.48xlarge $98.32 → $55.04, p4d.24xlarge $32.77 → $21.96; p4de.24xlarge $40.97 less 33 % = $27.45 (derived).
 * The G families were not part of the cut; their figures are the list prices before and after it.
 */
import { ConfigError } from "../../shared/errors.ts";

/** When the table below was taken (checked against the announcement above). */
export const PRICE_TABLE_DATE = "2026-12-03";

export const HOURLY_PRICE_USD: Readonly<Record<string, number>> = {
  "p5.48xlarge": 55.04,
  "p4d.24xlarge": 21.96,
  "p4de.24xlarge": 27.45,
  "g6e.xlarge": 1.861,
  "g6.xlarge": 0.805,
  "g5.xlarge": 1.006,
  "g5.12xlarge": 5.672,
  "g5.48xlarge": 16.288,
};

export interface HourlyPrice {
  usdPerHour: number;
  /** YYYY-MM-DD: when the price was taken (the table's date, or the run's for `--price`). */
  date: string;
  source: string;
}

/** The hourly price to charge: `--price` (dated `runDate`) when given, else the table's price for the type. */
export function hourlyPrice(instanceType: string, override: number | undefined, runDate: string): HourlyPrice {
  if (override !== undefined) return { usdPerHour: override, date: runDate, source: "--price" };
  const price = HOURLY_PRICE_USD[instanceType];
  if (price === undefined) {
    throw new ConfigError([`no price known for ${instanceType}: pass --price <USD per hour> (known: ${Object.keys(HOURLY_PRICE_USD).join(", ")})`]);
  }
  return { usdPerHour: price, date: PRICE_TABLE_DATE, source: `on-demand ${instanceType}, us-east-1` };
}
