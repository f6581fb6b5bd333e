import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs to stderr. Known secret-bearing fields are redacted wherever they appear. */
export function createLogger(level: string, name: string): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ["apiKey", "*.apiKey", "password", "*.password", "authorization", "*.authorization", "*.headers.authorization", "databaseUrl", "*.databaseUrl", "redisUrl", "*.redisUrl"],
        censor: "[redacted]",
      },
    },
    pino.destination(2),
  );
}
