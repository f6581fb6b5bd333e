/** /v1/files: upload (streamed), retrieve, content (streamed), delete. Another tenant's file is a 404. */
import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type pg from "pg";
import { z } from "zod";
import { invalid, noSuch } from "../batches/openai-error.ts";
import { requestTenant } from "../batches/tenant.ts";
import { fileObject, type FileStore } from "./file-store.ts";
import { receiveUpload, type UploadLimits } from "./upload.ts";

export interface FileRoutesOptions {
  pool: pg.Pool;
  files: FileStore;
  limits: UploadLimits;
}

const fileParams = z.object({ file_id: z.string().min(1).max(128) });

export function registerFileRoutes(app: FastifyInstance, o: FileRoutesOptions): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post("/files", { schema: { summary: "Upload a JSONL batch input file (multipart: file, purpose=batch)", consumes: ["multipart/form-data"] } }, async (req) =>
    fileObject(await receiveUpload(req, o.pool, requestTenant(req), o.limits)),
  );

  r.get("/files/:file_id", { schema: { summary: "Retrieve a file object", params: fileParams } }, async (req) => {
    const file = await o.files.get(requestTenant(req), req.params.file_id);
    if (file === undefined) throw noSuch("File", req.params.file_id);
    return fileObject(file);
  });

  r.get("/files/:file_id/content", { schema: { summary: "Download a file's content (streamed)", params: fileParams } }, async (req, reply) => {
    const file = await o.files.get(requestTenant(req), req.params.file_id);
    if (file === undefined) throw noSuch("File", req.params.file_id);
    reply.header("content-type", "application/octet-stream").header("content-length", file.bytes);
    reply.header("content-disposition", `attachment; filename="${file.filename.replace(/[^\w.-]/g, "_")}"`);
    return reply.send(Readable.from(o.files.content(file)));
  });

  r.delete("/files/:file_id", { schema: { summary: "Delete a file", params: fileParams } }, async (req) => {
    const outcome = await o.files.delete(requestTenant(req), req.params.file_id);
    if (outcome === "not_found") throw noSuch("File", req.params.file_id);
    if (outcome === "in_use") throw invalid(409, "file_in_use", `file ${req.params.file_id} is the input of a batch still running`, "file_id");
    return { id: req.params.file_id, object: "file", deleted: true };
  });
}
