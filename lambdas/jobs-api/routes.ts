import { toBaseModelObject } from "../core/catalog/base-models.ts";
import { LIST_QUERY, type ListParams, listEnvelope, parseListParams } from "../core/http/pagination.ts";
import { jsonBody, type RequestContext, type Route, type RouteResult } from "../core/http/router.ts";
import type { Page } from "../core/jobs/ports.ts";
import {
  type JobRecord,
  toCheckpointObject,
  toFineTunedModelObject,
  toJobEventObject,
  toJobObject,
} from "../core/jobs/wire.ts";
import { cancelJob } from "./cancel-job.ts";
import { createJob } from "./create-job.ts";
import { deleteJob } from "./delete-job.ts";
import type { JobsDependencies } from "./dependencies.ts";
import { deployModel, undeployModel } from "./deployments.ts";
import {
  deleteModel,
  fineTunedCode,
  listModels,
  parseModelName,
  renameModel,
  retrieveModel,
} from "./models.ts";
import { pauseJob } from "./pause-job.ts";
import { listCheckpoints, listJobEvents, listJobs, retrieveJob } from "./read-jobs.ts";
import { resumeJob } from "./resume-job.ts";

export type { JobsDependencies } from "./dependencies.ts";

/** A row of the jobs API's route table: the handler parses, calls a service, and maps its result to the wire. */
export interface JobsRoute {
  readonly method: Route["method"];
  readonly pattern: string;
  readonly query?: Route["query"];
  readonly handler: (request: RequestContext, deps: JobsDependencies) => Promise<RouteResult>;
}

const ok = (body: unknown): RouteResult => ({ status: 200, body });
const jobIdOf = (request: RequestContext) => request.params.job_id ?? "";
const modelOf = (request: RequestContext) => request.params.model ?? "";
const JOB_LISTS = { defaultLimit: 20, maxLimit: 100 };

/**
 * A list under one job (events, checkpoints). The job is looked up first: another tenant's job is a 404
 * whatever the query says.
 */
function jobList<T>(
  list: (deps: JobsDependencies, job: JobRecord, params: ListParams) => Promise<Page<T>>,
  toObject: (item: T) => { readonly id: string },
  limits: { readonly defaultLimit: number; readonly maxLimit: number },
): JobsRoute["handler"] {
  return async (request, deps) => {
    const job = await retrieveJob(deps, request.tenantId, jobIdOf(request));
    const page = await list(deps, job, parseListParams(request.query, limits));
    return ok(listEnvelope(page.items.map(toObject), page.hasMore));
  };
}

/** `/v4/fine_tuning/jobs…` and `/v4/models…`. */
export const JOBS_ROUTES: readonly JobsRoute[] = [
  {
    method: "POST",
    pattern: "/v4/fine_tuning/jobs",
    handler: async (request, deps) => {
      const created = await createJob(deps, {
        tenantId: request.tenantId,
        body: jsonBody(request),
        idempotencyKey: request.headers["idempotency-key"],
      });
      return ok(created.kind === "estimate" ? created.estimate : toJobObject(created.job));
    },
  },
  {
    method: "GET",
    pattern: "/v4/fine_tuning/jobs",
    query: LIST_QUERY,
    handler: async (request, deps) => {
      const page = await listJobs(deps, request.tenantId, parseListParams(request.query, JOB_LISTS));
      return ok(listEnvelope(page.items.map(toJobObject), page.hasMore));
    },
  },
  {
    method: "GET",
    pattern: "/v4/fine_tuning/jobs/{job_id}",
    handler: async (request, deps) =>
      ok(toJobObject(await retrieveJob(deps, request.tenantId, jobIdOf(request)))),
  },
  {
    method: "DELETE",
    pattern: "/v4/fine_tuning/jobs/{job_id}",
    handler: async (request, deps) => {
      const deleted = await deleteJob(deps, request.tenantId, jobIdOf(request));
      return ok({ ...toJobObject(deleted), deleted: true });
    },
  },
  {
    method: "POST",
    pattern: "/v4/fine_tuning/jobs/{job_id}/cancel",
    handler: async (request, deps) =>
      ok(toJobObject(await cancelJob(deps, request.tenantId, jobIdOf(request)))),
  },
  {
    // The trainer checkpoints and stops; the compute is released (pause-job.ts).
    method: "POST",
    pattern: "/v4/fine_tuning/jobs/{job_id}/pause",
    handler: async (request, deps) =>
      ok(toJobObject(await pauseJob(deps, request.tenantId, jobIdOf(request)))),
  },
  {
    // Queued again; the new run continues from the newest checkpoint (resume-job.ts).
    method: "POST",
    pattern: "/v4/fine_tuning/jobs/{job_id}/resume",
    handler: async (request, deps) =>
      ok(toJobObject(await resumeJob(deps, request.tenantId, jobIdOf(request)))),
  },
  {
    method: "GET",
    pattern: "/v4/fine_tuning/jobs/{job_id}/events",
    query: LIST_QUERY,
    handler: jobList(listJobEvents, toJobEventObject, JOB_LISTS),
  },
  {
    method: "GET",
    pattern: "/v4/fine_tuning/jobs/{job_id}/checkpoints",
    query: LIST_QUERY,
    handler: jobList(listCheckpoints, toCheckpointObject, { defaultLimit: 10, maxLimit: 100 }),
  },
  {
    method: "GET",
    pattern: "/v4/models",
    handler: async (request, deps) => {
      const { base, fineTuned } = await listModels(deps, request.tenantId);
      return ok({
        object: "list",
        data: [...base.map(toBaseModelObject), ...fineTuned.map(toFineTunedModelObject)],
      });
    },
  },
  {
    method: "GET",
    pattern: "/v4/models/{model}",
    handler: async (request, deps) => {
      const model = await retrieveModel(deps, request.tenantId, modelOf(request));
      return ok(
        model.kind === "base" ? toBaseModelObject(model.model) : toFineTunedModelObject(model.record),
      );
    },
  },
  {
    method: "DELETE",
    pattern: "/v4/models/{model}",
    handler: async (request, deps) => {
      const code = await deleteModel(deps, request.tenantId, modelOf(request));
      return ok({ id: code, object: "model", deleted: true });
    },
  },
  {
    // A full-parameter model's own server (LoRA models need none): started by the deployer, not here.
    method: "POST",
    pattern: "/v4/models/{model}/deploy",
    handler: async (request, deps) =>
      ok(toFineTunedModelObject(await deployModel(deps, request.tenantId, modelOf(request)))),
  },
  {
    method: "DELETE",
    pattern: "/v4/models/{model}/deploy",
    handler: async (request, deps) =>
      ok(toFineTunedModelObject(await undeployModel(deps, request.tenantId, modelOf(request)))),
  },
  {
    // `{"name": …}`: the display name is the one editable field.
    method: "POST",
    pattern: "/v4/models/{model}",
    handler: async (request, deps) => {
      // A base model's name is a 400 before the body is read.
      const code = fineTunedCode(deps.catalog, modelOf(request), "changed");
      const name = parseModelName(jsonBody(request));
      return ok(toFineTunedModelObject(await renameModel(deps, request.tenantId, code, name)));
    },
  },
  {
    // The zhipuai SDK's `fine_tuning.models.delete`: the same delete, answered in Zhipu's shape
    // (`delete_status`) beside OpenAI's fields.
    method: "DELETE",
    pattern: "/v4/fine_tuning/fine_tuned_models/{model}",
    handler: async (request, deps) => {
      const code = await deleteModel(deps, request.tenantId, modelOf(request));
      return ok({
        request_id: request.requestId,
        model_name: code,
        delete_status: "deleted",
        id: code,
        object: "model",
        deleted: true,
      });
    },
  },
];

/** The route table bound to its dependencies, each handler after `deps.ready` (the catalog's check). */
export function jobsRoutes(deps: JobsDependencies): Route[] {
  return JOBS_ROUTES.map(({ method, pattern, query, handler }) => ({
    method,
    pattern,
    ...(query ? { query } : {}),
    handler: async (request: RequestContext) => {
      await deps.ready?.();
      return handler(request, deps);
    },
  }));
}
