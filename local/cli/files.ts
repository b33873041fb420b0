import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { basename } from "node:path";
import { UsageError } from "./admin.ts";
import { formatBytes, ProgressBar } from "./progress.ts";
import {
  ApiError,
  type CommandContext,
  type CommandSpec,
  ConnectionError,
  type FileObject,
} from "./tenant-api.ts";

/** `ftctl files …`: upload (multipart or presigned PUT), list, get, delete. */

export const FILES_USAGE = `ftctl files upload <path> [--wait]          upload JSONL; --wait until validated
ftctl files list [--limit N] [--after <id>]
ftctl files get <file id>                   status, statistics, validation errors
ftctl files delete <file id>`;

const UPLOAD_USAGE = `usage: ftctl files upload <path> [--wait]

Files up to 4 MiB go as one multipart POST /files; larger ones (up to 1 GiB) through POST /files/uploads
and a PUT of the bytes to the presigned URL it returns, with a progress bar. --wait polls the file until
it is processed (prints its statistics) or error (prints the line-level report, exit code 1).`;

export const FILES_COMMANDS: Record<string, CommandSpec> = {
  "files upload": {
    usage: UPLOAD_USAGE,
    options: { wait: { type: "boolean" } },
    run: async (ctx, args, values) => {
      const path = args[0];
      if (!path || args.length > 1) throw new UsageError(`expected one path\n\n${UPLOAD_USAGE}`);
      let file = await uploadFile(ctx, path);
      if (values.wait) {
        file = await waitForFile(ctx, file);
        printFile(ctx, file);
        return file.status === "error" ? 1 : 0;
      }
      printFile(ctx, file);
      if (!ctx.json)
        ctx.err(`Validation runs now; see it with 'ftctl files get ${file.id}' (or use --wait).`);
      return 0;
    },
  },
  "files list": {
    usage: "usage: ftctl files list [--limit N] [--after <file id>]",
    options: { limit: { type: "string" }, after: { type: "string" } },
    run: async (ctx, args, values) => {
      if (args.length > 0) throw new UsageError("usage: ftctl files list [--limit N] [--after <file id>]");
      const page = await ctx.api.listFiles({
        limit: values.limit as string | undefined,
        after: values.after as string | undefined,
      });
      if (ctx.json) ctx.out(JSON.stringify(page, null, 2));
      else {
        for (const file of page.data) ctx.out(fileLine(file));
        if (page.data.length === 0) ctx.out("no files");
        const last = page.data[page.data.length - 1];
        if (page.has_more && last) ctx.out(`… more: ftctl files list --after ${last.id}`);
      }
      return 0;
    },
  },
  "files get": {
    usage: "usage: ftctl files get <file id>",
    options: {},
    run: async (ctx, args) => {
      const id = oneId(args, "usage: ftctl files get <file id>");
      const file = await ctx.api.getFile(id);
      printFile(ctx, file);
      return 0;
    },
  },
  "files delete": {
    usage: "usage: ftctl files delete <file id>",
    options: {},
    run: async (ctx, args) => {
      const id = oneId(args, "usage: ftctl files delete <file id>");
      const deleted = await ctx.api.deleteFile(id);
      ctx.out(ctx.json ? JSON.stringify(deleted, null, 2) : `Deleted ${deleted.id}.`);
      return 0;
    },
  },
};

export function oneId(args: string[], usage: string): string {
  const [id] = args;
  if (!id || args.length !== 1) throw new UsageError(usage);
  return id;
}

/** Uploads one file: multipart when small, else a presigned PUT streamed from disk. */
export async function uploadFile(ctx: CommandContext, path: string): Promise<FileObject> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error("not a regular file");
    size = info.size;
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  const filename = basename(path);
  if (size <= ctx.multipartLimitBytes) {
    return ctx.api.uploadMultipart(filename, await readFile(path));
  }
  const session = await ctx.api.createUpload(filename, size);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(session.upload_headers ?? {}))
    headers[name.toLowerCase()] = value;
  headers["content-type"] ??= "application/jsonl";
  if (headers["content-length"] !== undefined && headers["content-length"] !== String(size)) {
    throw new Error(
      `the upload URL is pinned to ${headers["content-length"]} bytes but ${path} now has ${size}; upload again.`,
    );
  }
  headers["content-length"] = String(size);
  const bar = new ProgressBar(size, ctx.progress, filename);
  try {
    await putFile(session.upload_url, path, headers, (sent) => bar.update(sent));
  } finally {
    bar.finish();
  }
  return { ...stripUpload(session), status: "uploaded" };
}

function stripUpload(session: FileObject & { upload_url?: string }): FileObject {
  const {
    upload_url: _url,
    upload_headers: _h,
    upload_method: _m,
    expires_at: _e,
    ...file
  } = session as FileObject & Record<string, unknown>;
  return file as FileObject;
}

/**
 * PUTs a file to a presigned URL, streamed from disk with exactly the given headers (S3 rejects
 * chunked transfer encoding and checks the signed content-type, content-length and If-None-Match, the
 * last of which makes the URL good for one upload). Node's http module rather than fetch, so the
 * length is sent as is and never chunked.
 */
export function putFile(
  url: string,
  path: string,
  headers: Record<string, string>,
  onProgress: (sentBytes: number) => void,
): Promise<void> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(target, { method: "PUT", headers });
    request.on("error", (error) =>
      reject(new ConnectionError(`the upload to ${target.host} failed: ${error.message}`)),
    );
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve();
        const body = Buffer.concat(chunks).toString("utf8");
        const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? null;
        const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1] ?? (body.slice(0, 200) || "no details");
        if (code === "PreconditionFailed") {
          // The URL signs If-None-Match: * (one upload per URL) and an object is there already.
          const used = "the upload URL was used already; upload the file again to get a new file id and URL";
          return reject(new ApiError(status, used, code));
        }
        reject(new ApiError(status, `the upload to storage was refused: ${message}`, code));
      });
    });
    let sent = 0;
    const source = createReadStream(path);
    source.on("data", (chunk) => {
      sent += chunk.length;
      onProgress(sent);
    });
    source.on("error", (error) => {
      request.destroy();
      reject(new Error(`cannot read ${path}: ${error.message}`));
    });
    source.pipe(request);
  });
}

const FINAL_FILE_STATUSES = new Set(["processed", "error"]);

/** Polls a file until it is processed or error, printing each status it passes through. */
export async function waitForFile(ctx: CommandContext, initial: FileObject): Promise<FileObject> {
  let file = initial;
  let shown = "";
  for (;;) {
    if (file.status !== shown && !ctx.json) ctx.err(`${file.id}: ${file.status}`);
    shown = file.status;
    if (FINAL_FILE_STATUSES.has(file.status)) return file;
    await ctx.sleep(ctx.pollIntervalMs);
    file = await ctx.api.getFile(file.id);
  }
}

export function fileLine(file: FileObject): string {
  const examples = file.statistics?.examples;
  return [
    file.id,
    file.status.padEnd(14),
    formatBytes(file.bytes).padStart(10),
    typeof examples === "number" ? `${examples} examples` : "",
    file.filename,
  ]
    .filter(Boolean)
    .join("  ");
}

/** A file with its statistics, or its validation report when it is `error`. */
export function printFile(ctx: CommandContext, file: FileObject): void {
  if (ctx.json) {
    ctx.out(JSON.stringify(file, null, 2));
    return;
  }
  ctx.out(`${file.id}  ${file.filename}  ${formatBytes(file.bytes)}  ${file.status}`);
  if (file.status_details) ctx.out(`  ${file.status_details}`);
  const stats = file.statistics as StatisticsView | null | undefined;
  if (file.status === "processed" && stats) {
    const tokens = stats.tokens;
    ctx.out(
      `  ${stats.examples} examples (${file.format ?? "?"}${stats.legacyExamples ? `, ${stats.legacyExamples} legacy` : ""})` +
        (tokens ? `, ${tokens.total} tokens (${tokens.method})` : "") +
        (stats.duplicates?.count ? `, ${stats.duplicates.count} duplicates` : ""),
    );
    if (stats.turns) ctx.out(`  turns per example: ${stats.turns.min}–${stats.turns.max}`);
    const over = Object.entries(stats.overLength ?? {}).filter(([, n]) => n > 0);
    if (over.length) ctx.out(`  over the max length: ${over.map(([m, n]) => `${m} ${n}`).join(", ")}`);
  }
  const validation = file.validation;
  if (file.status === "error" && validation) {
    const total = Object.values(validation.error_counts).reduce((a, b) => a + b, 0);
    ctx.out(`  ${total} error${total === 1 ? "" : "s"}:`);
    for (const e of validation.errors) {
      ctx.out(`  line ${e.line}${e.path ? ` ${e.path}` : ""}: ${e.code}: ${e.message}`);
    }
    if (validation.errors_truncated) {
      const counts = Object.entries(validation.error_counts).map(([code, n]) => `${code} ${n}`);
      ctx.out(`  (only the first ${validation.errors.length} listed; all: ${counts.join(", ")})`);
    }
  }
}

interface StatisticsView {
  examples: number;
  legacyExamples?: number;
  turns?: { min: number; max: number };
  tokens?: { total: number; method: string };
  duplicates?: { count: number };
  overLength?: Record<string, number>;
}
