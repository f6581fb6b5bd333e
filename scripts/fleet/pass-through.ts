/**
 * One HTTP exchange forwarded to another server, for the suite's measuring proxies (recording-proxy.ts: when each
 * call began and ended; bench/sqs-cost.ts: calls and bytes). `onEnd` is told once how the exchange ended, with the
 * bytes each way; a caller that gives up (a worker stopping mid long poll) has its upstream call cut too.
 */
import { request, type IncomingMessage, type ServerResponse } from "node:http";

export interface ExchangeEnd {
  outcome: "served" | "error" | "aborted";
  /** The status sent to the caller, when one was. */
  status?: number;
  requestBytes: number;
  responseBytes: number;
}

export function passThrough(req: IncomingMessage, res: ServerResponse, to: URL, onEnd: (end: ExchangeEnd) => void): void {
  let requestBytes = 0;
  let responseBytes = 0;
  let ended = false;
  const end = (outcome: ExchangeEnd["outcome"]) => {
    if (ended) return;
    ended = true;
    onEnd({ outcome, ...(res.headersSent ? { status: res.statusCode } : {}), requestBytes, responseBytes });
  };
  req.on("data", (chunk: Buffer) => void (requestBytes += chunk.length));
  const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.on("data", (chunk: Buffer) => void (responseBytes += chunk.length));
    up.pipe(res);
    up.once("end", () => end((up.statusCode ?? 502) < 400 ? "served" : "error"));
    up.once("error", () => res.destroy());
  });
  upstream.once("error", () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
    end("error");
  });
  res.once("close", () => {
    if (!res.writableFinished) upstream.destroy();
    end("aborted");
  });
  req.pipe(upstream);
}
