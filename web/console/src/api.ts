import { declaredMimeType, uploadPath } from "./lib/upload.ts";

/** What `/config.json` says: where the REST API and chat answer (both end in `/v4`). */
export interface ConsoleConfig {
  readonly apiBaseUrl: string;
  readonly chatBaseUrl: string;
}

/** An HTTP error of the API, with its envelope's message and code (`{"error": {...}}`). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export async function loadConfig(): Promise<ConsoleConfig> {
  // At the site's root, beside index.html (the CDK deployment writes it there; locally the platform answers it).
  const response = await fetch(new URL("/config.json", location.href), { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = (await response.json()) as Partial<ConsoleConfig>;
  const apiBaseUrl = absolute(config.apiBaseUrl ?? "/v4");
  return { apiBaseUrl, chatBaseUrl: absolute(config.chatBaseUrl ?? apiBaseUrl) };
}

function absolute(url: string): string {
  return new URL(url, document.baseURI).toString().replace(/\/+$/, "");
}

/** The error of a failed response: the envelope's message when there is one. */
export async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as {
      error?: { message?: string; code?: string | null; param?: string | null };
    };
    if (body.error?.message) {
      return new ApiError(
        body.error.message,
        response.status,
        body.error.code ?? null,
        body.error.param ?? null,
      );
    }
  } catch {
    // Not JSON: a proxy's page, an empty body.
  }
  return new ApiError(`HTTP ${response.status} ${response.statusText}`.trim(), response.status, null);
}

export interface List<T> {
  readonly object: "list";
  readonly data: T[];
  readonly has_more?: boolean;
}

export type UploadProgress = (loaded: number, total: number) => void;

/** The public REST API with the tenant's key, exactly as a tenant's own code calls it. */
export class Api {
  constructor(
    readonly config: ConsoleConfig,
    private readonly key: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.key}`, ...extra };
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.config.apiBaseUrl}${path}`, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body ?? {});
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** Opens a streamed chat completion; the caller reads the body. */
  async chat(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    const response = await fetch(`${this.config.chatBaseUrl}/chat/completions`, {
      method: "POST",
      headers: this.headers({ "content-type": "application/json", accept: "text/event-stream" }),
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
    if (!response.ok || !response.body) throw await errorOf(response);
    return response;
  }

  /**
   * Uploads a training file with progress: multipart `POST /files` when small, else `POST
   * /files/uploads` and a PUT of the bytes to the presigned URL with exactly the headers it was signed
   * with. The file object.
   */
  async upload(file: File, onProgress: UploadProgress): Promise<FileObject> {
    if (uploadPath(file.size) === "multipart") {
      const form = new FormData();
      form.append("purpose", "fine-tune");
      form.append("file", file, file.name);
      const text = await this.xhr(
        "POST",
        `${this.config.apiBaseUrl}/files`,
        form,
        this.headers(),
        onProgress,
      );
      return JSON.parse(text) as FileObject;
    }
    const created = await this.post<
      FileObject & { upload_url: string; upload_headers: Record<string, string> }
    >("/files/uploads", {
      filename: file.name,
      purpose: "fine-tune",
      bytes: file.size,
      mime_type: declaredMimeType(file.type),
    });
    // The browser sets content-length itself and refuses to be told it.
    const headers = Object.fromEntries(
      Object.entries(created.upload_headers).filter(([name]) => name.toLowerCase() !== "content-length"),
    );
    await this.xhr("PUT", created.upload_url, file, headers, onProgress);
    return created;
  }

  private xhr(
    method: string,
    url: string,
    body: XMLHttpRequestBodyInit,
    headers: Record<string, string>,
    onProgress: UploadProgress,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open(method, url);
      for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
      request.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      };
      request.onload = () => {
        if (request.status >= 200 && request.status < 300) {
          resolve(request.responseText);
          return;
        }
        reject(
          new Response(request.responseText, { status: request.status, statusText: request.statusText }),
        );
      };
      request.onerror = () => reject(new ApiError(`The upload to ${new URL(url).host} failed.`, 0, null));
      request.send(body);
    });
  }
}

/** Turns a rejected upload (a Response) into an ApiError. */
export async function asApiError(error: unknown): Promise<Error> {
  if (error instanceof Response) return errorOf(error);
  return error instanceof Error ? error : new Error(String(error));
}

export interface FileObject {
  readonly id: string;
  readonly object: "file";
  readonly bytes: number;
  readonly created_at: number;
  readonly filename: string;
  readonly purpose: string;
  readonly status: "pending_upload" | "uploaded" | "processed" | "error";
  readonly status_details: string | null;
  readonly format: string | null;
  readonly statistics: FileStatistics | null;
  readonly validation: import("./lib/report.ts").Validation | null;
}

export interface Distribution {
  readonly total: number;
  readonly min: number;
  readonly mean: number;
  readonly max: number;
}

export interface FileStatistics {
  readonly examples?: number;
  readonly legacyExamples?: number;
  readonly lines?: number;
  readonly bytes?: number;
  readonly byteOrderMark?: boolean;
  readonly turns?: Distribution;
  readonly characters?: { readonly system: number; readonly user: number; readonly assistant: number };
  readonly tokens?: Distribution & { readonly method: string; readonly assistant: number };
  readonly overLength?: Record<string, number>;
  readonly duplicates?: {
    readonly count: number;
    readonly trackedExamples: number;
    readonly capped: boolean;
  };
  readonly preference?: { readonly pairs: number; readonly whitespaceOnly: number };
}

export type JobStatus =
  | "validating_files"
  | "queued"
  | "running"
  | "paused"
  | "succeeded"
  | "failed"
  | "cancelled"
  | string;

export interface JobObject {
  readonly id: string;
  readonly model: string;
  readonly created_at: number;
  readonly finished_at: number | null;
  readonly fine_tuned_model: string | null;
  readonly status: JobStatus;
  readonly training_file: string;
  readonly validation_file: string | null;
  readonly hyperparameters: Record<string, number | string | null>;
  readonly training_type: "lora" | "full";
  readonly trained_tokens: number | null;
  readonly error: { readonly message?: string; readonly code?: string } | null;
  readonly estimated_finish: number | null;
  readonly model_code: string;
  readonly name: string | null;
}

export interface CheckpointObject {
  readonly id: string;
  readonly created_at: number;
  readonly fine_tuned_model_checkpoint: string;
  readonly step_number: number;
  readonly metrics: Record<string, number | null>;
}

export interface BaseModelObject {
  readonly id: string;
  readonly object: "model";
  readonly owned_by: string;
  readonly family: string;
  readonly fine_tuning_methods: readonly ("lora" | "full")[];
  readonly max_seq_length: number;
}

export interface FineTunedModelObject {
  readonly id: string;
  readonly object: "model";
  readonly created: number;
  readonly name: string | null;
  readonly root: string;
  readonly parent: string;
  readonly status: "pending" | "ready" | "failed";
  readonly fine_tuning_job_id: string;
  readonly method: "lora" | "full";
  readonly deployment?: { readonly status: string; readonly failure_reason?: string } | null;
}

export type ModelObject = BaseModelObject | FineTunedModelObject;

export function isFineTuned(model: ModelObject): model is FineTunedModelObject {
  return "fine_tuning_job_id" in model;
}

export const TERMINAL_JOB_STATUSES: readonly string[] = ["succeeded", "failed", "cancelled"];
