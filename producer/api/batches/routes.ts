/** /v1/batches: create, retrieve, list (newest first, `after` cursor), cancel. Another tenant's batch is a 404. */
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { batchObject, needsProgress } from "./batch-object.ts";
import type { BatchRow, BatchStore } from "./batch-store.ts";
import { BATCH_ENDPOINTS } from "./openai-body.ts";
import { noSuch } from "./openai-error.ts";
import { requestTenant } from "./tenant.ts";

/** The only completion window OpenAI offers. */
const COMPLETION_WINDOWS = { "24h": 24 * 3600 * 1000 } as const;

const createBody = z.object({
  input_file_id: z.string().min(1).max(128),
  endpoint: z.enum(BATCH_ENDPOINTS),
  completion_window: z.enum(Object.keys(COMPLETION_WINDOWS) as ["24h"]),
  // OpenAI's metadata: at most 16 pairs, keys ≤ 64 characters, values ≤ 512.
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, { message: "at most 16 metadata keys" })
    .nullable()
    .optional(),
  /** Not OpenAI's (send it with the SDK's `extra_body`-style body): POSTed the batch object when it ends. */
  webhook_url: z.url({ protocol: /^https?$/, message: "webhook_url must be an http(s) URL" }).max(2048).optional(),
});
const batchParams = z.object({ batch_id: z.string().min(1).max(128) });
const listQuery = z.object({ after: z.string().min(1).max(128).optional(), limit: z.coerce.number().int().min(1).max(100).default(20) });

export function registerBatchRoutes(app: FastifyInstance, batches: BatchStore): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const show = async (b: BatchRow) => batchObject(b, needsProgress(b) ? await batches.progress(b) : undefined);

  r.post("/batches", { schema: { summary: "Create a batch from an uploaded file", body: createBody } }, async (req) => {
    const b = req.body;
    const row = await batches.create(requestTenant(req), {
      inputFileId: b.input_file_id,
      endpoint: b.endpoint,
      completionWindow: b.completion_window,
      completionWindowMs: COMPLETION_WINDOWS[b.completion_window],
      metadata: b.metadata ?? null,
      webhookUrl: b.webhook_url ?? null,
    });
    return batchObject(row);
  });

  r.get("/batches/:batch_id", { schema: { summary: "Retrieve a batch, with live request counts", params: batchParams } }, async (req) => {
    const row = await batches.get(requestTenant(req), req.params.batch_id);
    if (row === undefined) throw noSuch("Batch", req.params.batch_id);
    return show(row);
  });

  r.get("/batches", { schema: { summary: "List batches, newest first", querystring: listQuery } }, async (req) => {
    const { rows, hasMore } = await batches.list(requestTenant(req), req.query.after, req.query.limit);
    const data = await Promise.all(rows.map(show));
    return { object: "list", data, first_id: rows[0]?.id ?? null, last_id: rows.at(-1)?.id ?? null, has_more: hasMore };
  });

  r.post("/batches/:batch_id/cancel", { schema: { summary: "Cancel a batch", params: batchParams } }, async (req) => show(await batches.cancel(requestTenant(req), req.params.batch_id)));
}
