import type { TenantTarget } from "./config.ts";
import type { ProgressStream } from "./progress.ts";

/**
 * A small client of the platform's public API (`/v4`), on plain `fetch`: what the tenant commands of
 * ftctl (files, jobs, models, chat, usage) call. Every non-2xx answer becomes an {@link ApiError} holding the
 * OpenAI error envelope's fields; an unreachable endpoint becomes a {@link ConnectionError}.
 */

/** An error answer of the API: the envelope's message, code, type and param, and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly type: string | null = null,
    readonly param: string | null = null,
    readonly requestId: string | null = null,
  ) {
    super(message);
  }

  /** `No such file: file-… (file_not_found, HTTP 404)`. */
  describe(): string {
    return `${this.message} (${[this.code, `HTTP ${this.status}`].filter(Boolean).join(", ")})`;
  }
}

/** The endpoint could not be reached at all (refused, DNS, TLS, reset). */
export class ConnectionError extends Error {}

type Query = Record<string, string | number | undefined>;

export interface RequestOptions {
  readonly json?: unknown;
  readonly form?: FormData;
  readonly query?: Query;
  readonly headers?: Record<string, string>;
}

/** The OpenAI list envelope. */
export interface ListPage<T> {
  readonly object: "list";
  readonly data: T[];
  readonly has_more: boolean;
}

export interface FileObject {
  readonly id: string;
  readonly bytes: number;
  readonly created_at: number;
  readonly filename: string;
  readonly status: string;
  readonly status_details?: string | null;
  readonly format?: string | null;
  readonly statistics?: Record<string, unknown> | null;
  readonly validation?: {
    readonly errors: { line: number; path: string; code: string; message: string }[];
    readonly error_counts: Record<string, number>;
    readonly errors_truncated: boolean;
  } | null;
}

export interface UploadSession extends FileObject {
  readonly upload_url: string;
  readonly upload_method?: string;
  readonly upload_headers: Record<string, string>;
  readonly expires_at?: number;
}

export interface JobObject {
  readonly id: string;
  readonly status: string;
  readonly model: string;
  readonly model_code?: string | null;
  readonly name?: string | null;
  readonly fine_tuned_model?: string | null;
  readonly training_file?: string;
  readonly validation_file?: string | null;
  readonly created_at?: number;
  readonly finished_at?: number | null;
  readonly method?: { type: string; hyperparameters?: Record<string, unknown> };
  readonly hyperparameters?: Record<string, unknown>;
  readonly trained_tokens?: number | null;
  readonly error?: { message?: string; code?: string; param?: string | null } | null;
}

export interface JobEvent {
  readonly id: string;
  readonly created_at: number;
  readonly level: string;
  readonly message: string;
  readonly type?: string;
  readonly data?: Record<string, unknown> | null;
}

export type DeploymentStatus = "deploying" | "deployed" | "failed" | "undeployed";

/** A full-parameter model's (latest) deployment: its own server; null fields before the first deploy. */
export interface DeploymentObject {
  readonly id?: string;
  readonly status: DeploymentStatus;
  readonly tensor_parallel_size: number | null;
  readonly instance_type: string | null;
  readonly requested_at?: number;
  readonly deployed_at: number | null;
  readonly failure_reason?: string;
}

export interface ModelObject {
  readonly id: string;
  readonly created?: number;
  readonly owned_by?: string;
  readonly root?: string;
  readonly name?: string | null;
  readonly status?: string;
  readonly fine_tuning_job_id?: string;
  readonly method?: string;
  /** Only on a full-parameter model (a LoRA model is served on its base model's server). */
  readonly deployment?: DeploymentObject;
}

/** One row of `GET /usage`: a model's chat totals on one UTC day. */
export interface DailyUsageObject {
  readonly object: "usage.daily";
  readonly date: string;
  readonly model: string;
  readonly requests: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export interface UsageList {
  readonly object: "list";
  readonly start: string;
  readonly end: string;
  readonly data: DailyUsageObject[];
}

export class TenantApi {
  constructor(
    readonly target: TenantTarget,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** Sends a request; returns the response when it is 2xx, else throws the {@link ApiError}. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = new URL(`${this.target.baseUrl}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.target.apiKey}`,
      accept: "application/json",
      ...options.headers,
    };
    let body: string | FormData | undefined;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form) {
      body = options.form;
    }
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method, headers, ...(body === undefined ? {} : { body }) });
    } catch (error) {
      throw connectionError(error, this.target.baseUrl);
    }
    if (!response.ok) throw await apiErrorOf(response);
    return response;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(
        response.status,
        `The API answered with something that is not JSON: ${snippet(text)}`,
      );
    }
  }

  uploadMultipart(filename: string, bytes: Uint8Array): Promise<FileObject> {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", new Blob([bytes], { type: "application/jsonl" }), filename);
    return this.request("POST", "/files", { form });
  }

  createUpload(filename: string, bytes: number): Promise<UploadSession> {
    return this.request("POST", "/files/uploads", {
      json: { filename, purpose: "fine-tune", bytes, mime_type: "application/jsonl" },
    });
  }

  getFile(id: string): Promise<FileObject> {
    return this.request("GET", `/files/${encodeURIComponent(id)}`);
  }

  listFiles(query: Query = {}): Promise<ListPage<FileObject>> {
    return this.request("GET", "/files", { query });
  }

  deleteFile(id: string): Promise<{ id: string; deleted: boolean }> {
    return this.request("DELETE", `/files/${encodeURIComponent(id)}`);
  }

  createJob(body: Record<string, unknown>, idempotencyKey: string): Promise<Record<string, unknown>> {
    return this.request("POST", "/fine_tuning/jobs", {
      json: body,
      headers: { "idempotency-key": idempotencyKey },
    });
  }

  listJobs(query: Query = {}): Promise<ListPage<JobObject>> {
    return this.request("GET", "/fine_tuning/jobs", { query });
  }

  getJob(id: string): Promise<JobObject> {
    return this.request("GET", `/fine_tuning/jobs/${encodeURIComponent(id)}`);
  }

  cancelJob(id: string): Promise<JobObject> {
    return this.request("POST", `/fine_tuning/jobs/${encodeURIComponent(id)}/cancel`);
  }

  pauseJob(id: string): Promise<JobObject> {
    return this.request("POST", `/fine_tuning/jobs/${encodeURIComponent(id)}/pause`);
  }

  resumeJob(id: string): Promise<JobObject> {
    return this.request("POST", `/fine_tuning/jobs/${encodeURIComponent(id)}/resume`);
  }

  deleteJob(id: string): Promise<JobObject & { deleted: boolean }> {
    return this.request("DELETE", `/fine_tuning/jobs/${encodeURIComponent(id)}`);
  }

  /** Events, newest first (as on OpenAI); `after` pages to older ones. */
  listEvents(id: string, query: Query = {}): Promise<ListPage<JobEvent>> {
    return this.request("GET", `/fine_tuning/jobs/${encodeURIComponent(id)}/events`, { query });
  }

  listModels(): Promise<ListPage<ModelObject>> {
    return this.request("GET", "/models");
  }

  getModel(code: string): Promise<ModelObject> {
    return this.request("GET", `/models/${encodeURIComponent(code)}`);
  }

  renameModel(code: string, name: string | null): Promise<ModelObject> {
    return this.request("POST", `/models/${encodeURIComponent(code)}`, { json: { name } });
  }

  deleteModel(code: string): Promise<{ id: string; deleted: boolean }> {
    return this.request("DELETE", `/models/${encodeURIComponent(code)}`);
  }

  /** Starts (or answers as it is) the deployment of a full-parameter model; the model object. */
  deployModel(code: string): Promise<ModelObject> {
    return this.request("POST", `/models/${encodeURIComponent(code)}/deploy`);
  }

  /** Releases a full-parameter model's server; the model object. */
  undeployModel(code: string): Promise<ModelObject> {
    return this.request("DELETE", `/models/${encodeURIComponent(code)}/deploy`);
  }

  /** The tenant's chat tokens per UTC day and model, `start` to `end` (YYYY-MM-DD, both included). */
  getUsage(start: string, end: string): Promise<UsageList> {
    return this.request("GET", "/usage", { query: { start, end } });
  }

  /** `POST /chat/completions` with `stream: true`: the response, whose body is the SSE stream. */
  chatStream(body: Record<string, unknown>): Promise<Response> {
    return this.send("POST", "/chat/completions", {
      json: { ...body, stream: true },
      headers: { accept: "text/event-stream" },
    });
  }
}

/** The envelope of an error response, or what can be said about a response without one. */
export async function apiErrorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  const headerId = response.headers.get("x-request-id") ?? response.headers.get("x-amzn-requestid");
  try {
    const error = (JSON.parse(text) as { error?: unknown }).error;
    if (error && typeof error === "object") {
      const e = error as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === "string" ? v : null);
      return new ApiError(
        response.status,
        str(e.message) ?? "(no message)",
        str(e.code),
        str(e.type),
        str(e.param),
        str(e.request_id) ?? headerId,
      );
    }
    const message = (JSON.parse(text) as { message?: unknown }).message; // API Gateway's own answers
    if (typeof message === "string")
      return new ApiError(response.status, message, null, null, null, headerId);
  } catch {
    // not JSON: described below
  }
  return new ApiError(
    response.status,
    `${response.statusText || "error"}${text ? `: ${snippet(text)}` : ""}`,
    null,
    null,
    null,
    headerId,
  );
}

export function connectionError(error: unknown, baseUrl: string): ConnectionError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (error as Error).message;
  const local = /\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]/.test(baseUrl);
  return new ConnectionError(
    `cannot reach ${baseUrl} (${reason}).${local ? " Is the local platform running ('npm start')?" : ""}`,
  );
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** What a tenant command gets: the client, where to print, and the clocks (injectable for tests). */
export interface CommandContext {
  readonly api: TenantApi;
  /** A line on stdout. */
  readonly out: (line: string) => void;
  /** A line on stderr. */
  readonly err: (line: string) => void;
  /** Text on stdout without a newline (streamed chat text, the live loss line). */
  readonly write: (text: string) => void;
  readonly stdoutIsTTY: boolean;
  /** Where progress bars go (stderr). */
  readonly progress: ProgressStream;
  readonly sleep: (ms: number) => Promise<void>;
  /** Between polls of `--wait` and `jobs follow`. */
  readonly pollIntervalMs: number;
  /** Files up to this size go as multipart `POST /files`; larger ones through `POST /files/uploads`. */
  readonly multipartLimitBytes: number;
  readonly json: boolean;
  readonly newIdempotencyKey: () => string;
}

export type OptionValues = Record<string, string | boolean | undefined>;

/** One tenant command: its usage text, its own options (beside the common ones) and what it does. */
export interface CommandSpec {
  readonly usage: string;
  readonly options: Record<string, { type: "string" | "boolean"; short?: string }>;
  readonly run: (ctx: CommandContext, args: string[], values: OptionValues) => Promise<number>;
}
