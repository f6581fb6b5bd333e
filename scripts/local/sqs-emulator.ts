/**
 * The embedded SQS emulator (fauxqs 1.9.2, chosen in docs/sqs-emulator.md), in-process and bound to loopback.
 * fauxqs' own startFauxqs() listens on 0.0.0.0, so we build its app and listen ourselves.
 * Queue URLs it returns look like http://sqs.<region>.localhost:<port>/000000000000/<name>: clients must set
 * `endpoint` (SqsQueue does) because that host does not resolve everywhere.
 */
import type { AddressInfo } from "node:net";
import { buildApp } from "fauxqs";

export interface EmulatorOptions {
  /** TCP port; 0 or unset picks a free one. */
  port?: number;
  /** Interface to bind; loopback unless told otherwise (the emulator has no auth). */
  host?: string;
}

export interface RunningEmulator {
  /** Base URL to pass as SQSClient `endpoint`. */
  endpoint: string;
  port: number;
  /** Closes the listener and open connections, ends pending long polls. Idempotent. */
  stop(): Promise<void>;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = opts.host ?? "127.0.0.1";
  const app = buildApp({ logger: false });
  await app.listen({ port: opts.port ?? 0, host });
  const { port } = app.server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    stop: () => (stopping ??= app.close().then(() => undefined)),
  };
}
