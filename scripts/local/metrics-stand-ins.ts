/**
 * Local stand-ins for the two push sinks of shared/metrics, recording what they receive (tests, the bench):
 * - Datadog: `POST /api/v1/series` with a `DD-API-KEY` header and `{"series": [...]}` (gzip/deflate accepted),
 *   answering 202 as Datadog does, or 403 when `apiKey` is set and the header differs.
 * - CloudWatch: PutMetricData over the protocol @aws-sdk/client-cloudwatch speaks (AWS JSON 1.0: `POST /`,
 *   `X-Amz-Target: GraniteServiceVersion20100801.PutMetricData`, a JSON body the SDK gzips past 10 KB), answering `{}`.
 * Both bind 127.0.0.1 on a free port; no signature is checked. `failing` makes them answer 500 (a sink whose flush
 * fails must not fail a job).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";

const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface DatadogSeries {
  metric: string;
  points: [number, number][];
  type: string;
  tags: string[];
}

export interface CloudWatchDatum {
  MetricName: string;
  Dimensions?: { Name: string; Value: string }[];
  Value?: number;
  StatisticValues?: { SampleCount: number; Sum: number; Minimum: number; Maximum: number };
  Unit?: string;
}

export interface StandIn<T> {
  endpoint: string;
  /** Every request accepted so far, in order. */
  readonly received: T[];
  /** Answer 500 to every request while true. */
  failing: boolean;
  /** Requests refused (403 for a wrong key, 500 while failing). */
  readonly refused: number;
  close(): Promise<void>;
}

export interface SeriesRequest {
  apiKey: string | undefined;
  series: DatadogSeries[];
}

export interface PutMetricDataRequest {
  Namespace: string;
  MetricData: CloudWatchDatum[];
}

export function startDatadogStandIn(o: { apiKey?: string } = {}): Promise<StandIn<SeriesRequest>> {
  return serve<SeriesRequest>(async (req, body, reply) => {
    if (req.method !== "POST" || req.url !== "/api/v1/series") return reply(404, { errors: ["Not found"] }, "application/json");
    const apiKey = header(req, "dd-api-key");
    if (o.apiKey !== undefined && apiKey !== o.apiKey) return reply(403, { errors: ["Forbidden"] }, "application/json");
    const { series } = JSON.parse(body) as { series: DatadogSeries[] };
    reply(202, { status: "ok" }, "application/json");
    return { apiKey, series };
  });
}

export function startCloudWatchStandIn(): Promise<StandIn<PutMetricDataRequest>> {
  const type = "application/x-amz-json-1.0";
  return serve<PutMetricDataRequest>(async (req, body, reply) => {
    const target = header(req, "x-amz-target");
    if (req.method !== "POST" || target !== "GraniteServiceVersion20100801.PutMetricData") {
      return reply(400, { __type: "UnknownOperationException", message: `this stand-in serves only PutMetricData, not ${String(target)}` }, type);
    }
    const request = JSON.parse(body) as PutMetricDataRequest;
    reply(200, {}, type);
    return request;
  });
}

type Handler<T> = (req: IncomingMessage, body: string, reply: (status: number, body: object, type: string) => void) => Promise<T | void>;

async function serve<T>(handle: Handler<T>): Promise<StandIn<T>> {
  const received: T[] = [];
  let refused = 0;
  const state = { failing: false };
  const server: Server = createServer((req, res) => void answer(req, res));
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: object, type: string) => {
      if (status >= 400) refused += 1;
      res.writeHead(status, { "content-type": type });
      res.end(JSON.stringify(body));
    };
    try {
      const body = await readBody(req);
      if (state.failing) return reply(500, { message: "stand-in told to fail" }, "application/json");
      const got = await handle(req, body, reply);
      if (got !== undefined) received.push(got);
    } catch (err) {
      if (!res.headersSent) reply(400, { message: err instanceof Error ? err.message : String(err) }, "application/json");
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    get refused() {
      return refused;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  const encoding = header(req, "content-encoding");
  const plain = encoding === "gzip" ? gunzipSync(raw) : encoding === "deflate" ? inflateSync(raw) : raw;
  return plain.toString("utf8");
}
