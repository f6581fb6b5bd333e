/**
 * The jobs resource: `POST /v1/jobs` (one job, or a list of up to 1,000) and `GET /v1/jobs/:id[?wait=N]`.
 * One job answers 202 with its id, or an error; a list answers 202 with the accepted ids and the refusals by index.
 */
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, notFound, openAiErrorSchema } from "./errors.ts";
import { submitJobs } from "./job-submit.ts";
import { jobParamsSchema, jobQuerySchema, jobView, jobViewSchema, submitBodySchema, submitManyResponse, submitOneResponse } from "./job-schemas.ts";
import { readOwnJob } from "./long-poll.ts";
import type { ApiPlugin } from "./api-deps.ts";

const errors = { 400: openAiErrorSchema, 401: openAiErrorSchema, 404: openAiErrorSchema, 429: openAiErrorSchema, 503: openAiErrorSchema };

export const jobRoutes: ApiPlugin = async (app, { deps }) => {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    "/jobs",
    {
      schema: {
        summary: "Submit one job, or a list of jobs",
        description: "The tenant is the API key's. `webhook_url` is POSTed, signed, when the job ends.",
        tags: ["jobs"],
        body: submitBodySchema,
        response: { 202: z.union([submitOneResponse, submitManyResponse]), ...errors, 413: openAiErrorSchema },
      },
    },
    async (request, reply) => {
      const many = Array.isArray(request.body);
      const inputs = Array.isArray(request.body) ? request.body : [request.body];
      const { accepted, refused } = await submitJobs(deps, request.tenant, inputs);
      if (many) {
        const data = accepted.map((a) => ({ index: a.index, id: a.id, object: "job" as const, status: "queued" as const }));
        const errs = refused.map(({ index, id, code, message }) => ({ index, id, code, message }));
        return reply.code(202).send({ object: "list" as const, data, errors: errs });
      }
      const refusal = refused[0];
      if (refusal !== undefined) {
        throw refusal.clientFault
          ? new ApiError(400, { message: refusal.message, type: "invalid_request_error", param: refusal.code === "tenant_mismatch" ? "tenant" : null, code: refusal.code })
          : new ApiError(503, { message: "the job could not be queued; retry later", type: "server_error", param: null, code: "service_unavailable" });
      }
      return reply.code(202).send({ id: accepted[0]!.id, object: "job" as const, status: "queued" as const });
    },
  );

  r.get(
    "/jobs/:id",
    {
      schema: {
        summary: "A job's status and result",
        description: `With \`wait\` (seconds, at most ${deps.config.maxWaitSeconds}), answers as soon as the job ends, or with its state when the wait runs out.`,
        tags: ["jobs"],
        params: jobParamsSchema,
        querystring: jobQuerySchema(deps.config.maxWaitSeconds),
        response: { 200: jobViewSchema, ...errors },
      },
    },
    async (request) => {
      const record = await readOwnJob(deps, request.params.id, request.tenant, request.query.wait * 1000, request.signal);
      if (record === undefined) throw notFound(`job with id '${request.params.id}'`, "id");
      return jobView(record);
    },
  );
};
