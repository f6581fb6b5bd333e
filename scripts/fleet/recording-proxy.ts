/**
 * An HTTP pass-through that records every request's interval keyed by its X-Request-Id, for a stand-in whose own
 * request log misses a protocol: the simulator's Gemini API (/v1beta) keeps what it received but not when each call
 * ended, and the overlap audit needs both ends. Same clock (epochMs) and entry shape as the simulator's own log.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RequestLog, epochMs, type RequestLogSnapshot } from "../simulators/vllm/request-log.ts";
import { passThrough } from "./pass-through.ts";

export interface RecordingProxy {
  url: string;
  port: number;
  requestLog(): RequestLogSnapshot;
  close(): Promise<void>;
}

/** `port` 0 picks one; pass a previous proxy's port to come back where the workers expect it. */
export async function startRecordingProxy(target: string, capacity: number, port = 0): Promise<RecordingProxy> {
  const log = new RequestLog(capacity);
  const to = new URL(target);
  const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => forward(req, res, to, log));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    requestLog: () => log.snapshot(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function forward(req: IncomingMessage, res: ServerResponse, to: URL, log: RequestLog): void {
  const startedAt = epochMs();
  const header = req.headers["x-request-id"];
  passThrough(req, res, to, ({ outcome, status }) =>
    log.record({ ...(typeof header === "string" ? { requestId: header } : {}), startedAt, endedAt: epochMs(), outcome, ...(status === undefined ? {} : { status }) }),
  );
}
