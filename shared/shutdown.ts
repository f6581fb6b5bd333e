import { coerceError } from "./errors.ts";
/**
 * Cleanup in stages: resources are registered as they are opened and closed in reverse order, each step on its
 * own so one failure (reported to `onError`) never skips the rest.
 */
export type CleanupStep = () => Promise<unknown> | unknown;

export async function runCleanup(steps: CleanupStep[], onError: (err: unknown) => void): Promise<void> {
  for (const step of [...steps].reverse()) {
    try {
      await step();
    } catch (err) {
      onError(err);
    }
  }
}

/** A deployable's last act: every cleanup step (failures logged, never skipping the rest), the log flushed, exit. */
export async function exitAfterCleanup(steps: CleanupStep[], log: { warn(obj: object, msg: string): void; flush?: () => void }, code: number): Promise<never> {
  await runCleanup(steps, (err) => log.warn({ err: coerceError(err) }, "cleanup step failed"));
  log.flush?.();
  process.exit(code);
}
