import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type MainDeps, main } from "../../../local/cli/ftctl.ts";

/** One request as the fake API saw it. */
export interface Seen {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

export type Handler = (request: Seen, response: ServerResponse, base: string) => void | Promise<void>;

/** A local HTTP server standing in for the platform's API; `handle` answers each request. */
export async function fakeApi(handle: Handler) {
  const seen: Seen[] = [];
  let base = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", base);
      const request = {
        method: req.method ?? "",
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(request);
      Promise.resolve(handle(request, res, base)).catch((error: Error) => {
        res.writeHead(599).end(error.message);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

export function apiError(res: ServerResponse, status: number, message: string, code: string): void {
  json(res, status, {
    error: { message, type: "invalid_request_error", param: null, code, request_id: "req-1" },
  });
}

/** Runs ftctl against `base` (+ /v4) and collects what it printed. */
export async function run(base: string, argv: string[], deps: MainDeps = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const written: string[] = [];
  const progress: string[] = [];
  const code = await main(
    [...argv, "--base-url", `${base}/v4`, "--api-key", "ftk_test"],
    (line) => out.push(line),
    (line) => err.push(line),
    {
      env: {},
      write: (text) => written.push(text),
      stdoutIsTTY: false,
      progress: { write: (text: string) => progress.push(text), isTTY: false },
      sleep: async () => {},
      pollIntervalMs: 0,
      newIdempotencyKey: () => "idem-fixed",
      ...deps,
    },
  );
  return {
    code,
    out: out.join("\n"),
    err: err.join("\n"),
    written: written.join(""),
    progress: progress.join(""),
  };
}

/** A deployment as the API shows it (`deployment` of a full-parameter model object). */
export const deploymentObject = (status: string, over: Record<string, unknown> = {}) => ({
  id: "dep-1",
  status,
  tensor_parallel_size: 1,
  instance_type: "m7i.large",
  requested_at: 1_700_000_000,
  deployed_at: status === "deployed" ? 1_700_000_090 : null,
  ...over,
});

const fullModel = (id: string, status: string, deployment: Record<string, unknown>) => ({
  id,
  object: "model",
  created: 1_700_000_000,
  owned_by: "tn_1",
  name: null,
  root: "tiny-chat",
  parent: "tiny-chat",
  status,
  fine_tuning_job_id: "ftjob-1",
  method: "full",
  deployment,
});

export interface ModelsFakeOptions {
  /** Polls of `GET /v4/models/{code}` after the deploy that still answer deploying (default 2). */
  readonly pollsUntilDone?: number;
  /** How the deployment ends (default deployed). */
  readonly outcome?: "deployed" | "failed" | "undeployed";
  /** Live deployments the tenant holds already, and the limit (default 0 of 2). */
  readonly live?: number;
  readonly limit?: number;
  /** Rows `GET /v4/usage` holds; those in the asked range are answered. */
  readonly usage?: readonly Record<string, unknown>[];
}

/**
 * The models, deploy and usage routes as the platform answers them: the base model `tiny-chat`, the LoRA
 * model `lora-facts`, the full model `full-facts` (ready, not deployed) whose deployment goes deploying →
 * the outcome after `pollsUntilDone` polls, and `still-training` (pending). Errors carry the platform's
 * codes and messages (400 model_not_deployable, 404 model_not_found, 409 model_not_ready, 429
 * quota_exceeded).
 */
export function modelsFake(options: ModelsFakeOptions = {}): Handler {
  const { pollsUntilDone = 2, outcome = "deployed", live = 0, limit = 2, usage = [] } = options;
  const lora = {
    id: "lora-facts",
    object: "model",
    owned_by: "tn_1",
    root: "tiny-chat",
    status: "ready",
    fine_tuning_job_id: "ftjob-2",
    method: "lora",
  };
  let deployment: Record<string, unknown> = {
    status: "undeployed",
    tensor_parallel_size: null,
    instance_type: null,
    deployed_at: null,
  };
  let polls = 0;
  const full = () => fullModel("full-facts", "ready", deployment);
  const pending = fullModel("still-training", "pending", deployment);
  return (req, res) => {
    const match = /^\/v4\/models\/([^/]+)(\/deploy)?$/.exec(req.path);
    const code = match ? decodeURIComponent(match[1]!) : undefined;
    if (req.path === "/v4/usage" && req.method === "GET") {
      const start = req.query.get("start");
      const end = req.query.get("end");
      if (!start || !end) return apiError(res, 400, "start and end are required", "invalid_request");
      const data = usage.filter((row) => String(row.date) >= start && String(row.date) <= end);
      return json(res, 200, { object: "list", start, end, data });
    }
    if (req.path === "/v4/models" && req.method === "GET") {
      return json(res, 200, {
        object: "list",
        data: [{ id: "tiny-chat", object: "model", owned_by: "ft-platform" }, lora, full()],
        has_more: false,
      });
    }
    if (!match) return apiError(res, 404, `No route ${req.method} ${req.path}`, "not_found");
    const known =
      code === "tiny-chat" || code === "lora-facts" || code === "full-facts" || code === "still-training";
    if (!known) return apiError(res, 404, `The model '${code}' does not exist.`, "model_not_found");
    if (!match[2]) {
      if (req.method !== "GET") return apiError(res, 405, "Method not allowed", "method_not_allowed");
      if (code === "lora-facts") return json(res, 200, lora);
      if (code === "still-training") return json(res, 200, pending);
      if (deployment.status === "deploying" && ++polls >= pollsUntilDone) {
        deployment =
          outcome === "failed"
            ? deploymentObject("failed", {
                failure_reason: "The server did not pass its health check within 900 seconds.",
              })
            : deploymentObject(outcome);
      }
      return json(res, 200, full());
    }
    const verb = req.method === "POST" ? "deployed" : "undeployed";
    if (code === "tiny-chat") {
      return apiError(
        res,
        400,
        `'${code}' is a base model: the platform serves it; it can not be ${verb}.`,
        "model_not_deployable",
      );
    }
    if (code === "lora-facts") {
      return apiError(
        res,
        400,
        `'${code}' is a LoRA model: it is served on its base model 'tiny-chat''s server and needs no deploy. Chat with it directly.`,
        "model_not_deployable",
      );
    }
    if (req.method === "POST") {
      if (code === "still-training") {
        return apiError(
          res,
          409,
          `The model '${code}' is still training (job ftjob-1); deploy it once its job has succeeded.`,
          "model_not_ready",
        );
      }
      if (deployment.status === "deploying" || deployment.status === "deployed")
        return json(res, 200, full());
      if (live >= limit) {
        return apiError(
          res,
          429,
          `Your organization has ${live} live deployments; the limit is ${limit} (deployments per tenant, set by the operator). Undeploy one with DELETE /v4/models/{code}/deploy, then retry.`,
          "quota_exceeded",
        );
      }
      polls = 0;
      deployment = deploymentObject("deploying");
      return json(res, 200, full());
    }
    if (req.method === "DELETE") {
      if (deployment.status === "deploying" || deployment.status === "deployed") {
        deployment = { ...deployment, status: "undeployed" };
      }
      return json(res, 200, code === "still-training" ? pending : full());
    }
    return apiError(res, 405, "Method not allowed", "method_not_allowed");
  };
}
