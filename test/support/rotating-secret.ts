/**
 * One secret in the local Secrets Manager stand-in, resolved by a real SecretResolver (no refresh spacing, so every
 * refresh after an auth failure asks again), with the resolver's log lines kept: what the provider-client tests rotate.
 */
import { pino } from "pino";
import { startSecretsManager } from "../../scripts/local/secrets-manager.ts";
import { SecretResolver, type SecretValue } from "../../shared/secrets.ts";
import { uniqueName } from "./env.ts";

export interface RotatingSecret {
  holder: SecretValue;
  /** Store a new value; the holder sees it on its next refresh. */
  rotate(value: string): void;
  /** GetSecretValue calls for this secret so far (1 after the start). */
  calls(): number;
  /** Every line the resolver logged. */
  lines: string[];
  close(): Promise<void>;
}

export async function rotatingSecret(initial: string): Promise<RotatingSecret> {
  const sm = await startSecretsManager();
  const name = `fleet/${uniqueName("key").replace(/_/g, "-")}`;
  const arn = sm.put(name, initial);
  const lines: string[] = [];
  const log = pino({ level: "trace" }, { write: (line: string) => void lines.push(line) });
  const resolver = new SecretResolver({ endpoint: sm.endpoint, minRefreshSpacingMs: 0, log });
  const { KEY } = await resolver.resolveAll({ KEY: arn });
  return {
    holder: KEY!,
    rotate: (value) => void sm.put(name, value),
    calls: () => sm.calls(name),
    lines,
    async close() {
      resolver.close();
      await sm.close();
    },
  };
}
