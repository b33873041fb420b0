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
