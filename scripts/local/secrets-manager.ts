/**
 * A stand-in for AWS Secrets Manager, enough for GetSecretValue over its JSON 1.1 protocol (what
 * @aws-sdk/client-secrets-manager speaks): `POST /` with `X-Amz-Target: secretsmanager.GetSecretValue` and body
 * `{"SecretId": name | ARN}`. Errors are AWS's shape, `{"__type": code, "message": ...}` with HTTP 400.
 * Tests rotate with `put` and count calls; bound to 127.0.0.1 on a free port. No auth: any signature is accepted.
 *
 *   node --import tsx scripts/local/secrets-manager.ts [name=value ...]   # prints the endpoint and each ARN
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface LocalSecretsManagerOptions {
  /** Region and account written into the ARNs. Defaults us-east-1 / 123456789012. */
  region?: string;
  account?: string;
}

export interface LocalSecretsManager {
  /** http://127.0.0.1:<port>, for the client's endpoint override. */
  endpoint: string;
  /** Create or rotate a secret (a new VersionId each time); returns its full ARN (with AWS's 6-character suffix). */
  put(name: string, value: string): string;
  /** Delete a secret: later reads answer ResourceNotFoundException. */
  delete(name: string): void;
  /** The full ARN of a stored secret. */
  arn(name: string): string;
  /** GetSecretValue calls answered so far, for one secret (by name) or all. */
  calls(name?: string): number;
  close(): Promise<void>;
}

interface Stored {
  name: string;
  arn: string;
  value: string;
  versionId: string;
  createdAt: number;
}

class AwsError extends Error {
  constructor(readonly type: string, message: string) {
    super(message);
  }
}

/** Largest request body read; GetSecretValue bodies are a few hundred bytes. */
const MAX_BODY_BYTES = 64 * 1024;

export async function startSecretsManager(o: LocalSecretsManagerOptions = {}): Promise<LocalSecretsManager> {
  const region = o.region ?? "us-east-1";
  const account = o.account ?? "123456789012";
  const secrets = new Map<string, Stored>();
  const counts = new Map<string, number>();
  let total = 0;

  /** A name, a full ARN (suffix included) or a partial ARN (no suffix), as the real service accepts. */
  const find = (secretId: string): Stored | undefined => {
    if (!secretId.startsWith("arn:")) return secrets.get(secretId);
    const tail = secretId.slice(secretId.indexOf(":secret:") + ":secret:".length);
    return [...secrets.values()].find((s) => s.arn === secretId) ?? secrets.get(tail);
  };

  const getSecretValue = (body: unknown): object => {
    const secretId = (body as { SecretId?: unknown } | null)?.SecretId;
    if (typeof secretId !== "string" || secretId === "") throw new AwsError("InvalidParameterException", "SecretId is required");
    const found = find(secretId);
    total += 1;
    if (found === undefined) throw new AwsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
    const name = found.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return { ARN: found.arn, Name: name, SecretString: found.value, VersionId: found.versionId, VersionStages: ["AWSCURRENT"], CreatedDate: found.createdAt / 1000 };
  };

  const server = createServer((req, res) => {
    void answer(req, res, getSecretValue);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    put(name, value) {
      const previous = secrets.get(name);
      const arn = previous?.arn ?? `arn:aws:secretsmanager:${region}:${account}:secret:${name}-${suffix()}`;
      secrets.set(name, { name, arn, value, versionId: randomBytes(16).toString("hex"), createdAt: Date.now() });
      return arn;
    },
    delete(name) {
      secrets.delete(name);
    },
    arn(name) {
      const found = secrets.get(name);
      if (found === undefined) throw new Error(`no secret ${name}`);
      return found.arn;
    },
    calls(name) {
      return name === undefined ? total : (counts.get(name) ?? 0);
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, getSecretValue: (body: unknown) => object): Promise<void> {
  const reply = (status: number, body: object) => {
    res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomBytes(8).toString("hex") });
    res.end(JSON.stringify(body));
  };
  try {
    const target = req.headers["x-amz-target"];
    const text = await readBody(req);
    if (req.method !== "POST" || target !== "secretsmanager.GetSecretValue") {
      throw new AwsError("UnknownOperationException", `this stand-in serves only GetSecretValue, not ${String(target)}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AwsError("SerializationException", "request body is not JSON");
    }
    reply(200, getSecretValue(body));
  } catch (err) {
    if (err instanceof AwsError) reply(400, { __type: err.type, message: err.message });
    else reply(500, { __type: "InternalServiceError", message: "stand-in failed" });
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new AwsError("SerializationException", "request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** AWS appends a hyphen and six random characters to the name in a secret's full ARN. */
function suffix(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return [...randomBytes(6)].map((b) => alphabet[b % alphabet.length]).join("");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startSecretsManager();
  for (const pair of process.argv.slice(2)) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`expected name=value, got an argument without '='`);
    process.stdout.write(`${server.put(pair.slice(0, at), pair.slice(at + 1))}\n`);
  }
  process.stdout.write(`Secrets Manager stand-in at ${server.endpoint} (SECRETS_ENDPOINT); Ctrl-C stops it\n`);
}
