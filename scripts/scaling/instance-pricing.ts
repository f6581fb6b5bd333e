/**
 * On-demand hourly prices (USD, Linux, us-east-1) of the GPU instance types a worker may run on. EC2 bills per
 * second (one-minute minimum), so cost = instance-minutes × hourly price ÷ 60. Prices change (AWS cut P4/P5 prices
 * in 2025) and differ by region: pass `--price` for what you actually pay (savings plans, reserved, spot).
 */
import { ConfigError } from "../../shared/errors.ts";

export const HOURLY_PRICE_USD: Readonly<Record<string, number>> = {
  "p5.48xlarge": 98.32,
  "p4d.24xlarge": 32.77,
  "p4de.24xlarge": 40.97,
  "g6e.xlarge": 1.861,
  "g6.xlarge": 0.805,
  "g5.xlarge": 1.006,
  "g5.12xlarge": 5.672,
  "g5.48xlarge": 16.288,
};

/** The hourly price to charge: the `--price` flag when given, else the table's price for the instance type. */
export function hourlyPrice(instanceType: string, override?: number): number {
  if (override !== undefined) return override;
  const price = HOURLY_PRICE_USD[instanceType];
  if (price === undefined) {
    throw new ConfigError([`no price known for ${instanceType}: pass --price <USD per hour> (known: ${Object.keys(HOURLY_PRICE_USD).join(", ")})`]);
  }
  return price;
}
