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
