/**
 * Load profiles: how many jobs arrive in each simulated minute. Arrivals are spread evenly inside a minute (the
 * queue model is a fluid), so a profile is just one rate per minute, in jobs per minute.
 */
import { ConfigError } from "../../shared/errors.ts";

export type LoadProfileSpec =
  /** The same rate every minute. */
  | { kind: "constant"; ratePerMinute: number; minutes: number }
  /**
   * A day's sinusoid: mean `ratePerMinute`, swinging ±`amplitude` (0–1, fraction of the mean) over 24 h, lowest at
   * `troughMinute` (default 04:00 = minute 240) and highest twelve hours later.
   */
  | { kind: "diurnal"; ratePerMinute: number; minutes: number; amplitude: number; troughMinute: number }
  /** A baseline with one burst of `multiple` × the baseline from `startMinute` for `durationMinutes`. */
  | { kind: "spike"; ratePerMinute: number; minutes: number; multiple: number; startMinute: number; durationMinutes: number }
  /** Recorded arrivals, one minute per row (see parseArrivalsCsv). */
  | { kind: "csv"; arrivals: number[] };

const MINUTES_PER_DAY = 1440;

/** Arrivals (jobs) in each minute of the profile. */
export function arrivalsPerMinute(spec: LoadProfileSpec): number[] {
  switch (spec.kind) {
    case "constant":
      return Array.from({ length: spec.minutes }, () => spec.ratePerMinute);
    case "diurnal":
      return Array.from({ length: spec.minutes }, (_, m) => {
        const phase = (2 * Math.PI * (m - spec.troughMinute)) / MINUTES_PER_DAY;
        return Math.max(0, spec.ratePerMinute * (1 - spec.amplitude * Math.cos(phase)));
      });
    case "spike":
      return Array.from({ length: spec.minutes }, (_, m) =>
        m >= spec.startMinute && m < spec.startMinute + spec.durationMinutes ? spec.ratePerMinute * spec.multiple : spec.ratePerMinute,
      );
    case "csv":
      return [...spec.arrivals];
  }
}

/**
 * Arrivals per minute from CSV text: one row per minute, in order. The last field of each row is the count, so both
 * `120` and `2024-05-01T10:00Z,120` work; a first row whose last field is not a number is a header; blank lines and
 * `#` comments are skipped.
 */
export function parseArrivalsCsv(text: string, source: string): number[] {
  const arrivals: number[] = [];
  const problems: string[] = [];
  const rows = text.split(/\r?\n/);
  rows.forEach((row, index) => {
    const line = row.trim();
    if (line === "" || line.startsWith("#")) return;
    const field = line.split(",").at(-1)?.trim() ?? "";
    const value = Number(field);
    if (field === "" || !Number.isFinite(value) || value < 0) {
      if (arrivals.length === 0 && problems.length === 0 && Number.isNaN(value)) return; // header row
      problems.push(`${source}:${index + 1}: "${field}" is not a non-negative number of arrivals`);
      return;
    }
    arrivals.push(value);
  });
  if (arrivals.length === 0) problems.push(`${source}: no rows of arrivals per minute`);
  if (problems.length > 0) throw new ConfigError(problems.slice(0, 10));
  return arrivals;
}
