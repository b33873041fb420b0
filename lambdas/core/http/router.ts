import { InvalidRequestError, NotFoundError, PlatformError } from "../errors.ts";

/** What a route handler sees: the tenant comes from the authorizer, never from the request. */
export interface RequestContext {
  readonly tenantId: string;
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body, base64-decoded when API Gateway encoded it. */
  readonly body: Buffer;
}

export type RouteResult =
  | { status: number; body: unknown }
  | { redirect: string }
  | { raw: { status: number; contentType: string; body: Buffer } };
export type RouteHandler = (request: RequestContext) => Promise<RouteResult>;

export interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  /** e.g. `/v4/files/{file_id}/content` */
  readonly pattern: string;
  readonly handler: RouteHandler;
}

interface CompiledRoute extends Route {
  readonly regex: RegExp;
  readonly names: string[];
}

/** A route table from `METHOD /path/{param}` to a handler, matched on the request path. */
export class Router {
  private readonly routes: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    this.routes = routes.map((route) => {
      const names: string[] = [];
      const source = route.pattern.replace(/\{(\w+)\}/g, (_, name: string) => {
        names.push(name);
        return "([^/]+)";
      });
      return { ...route, names, regex: new RegExp(`^${source}/?$`) };
    });
  }

  /**
   * The matching route and its decoded path parameters. An unknown path and a method the path does not
   * have are both a 404 `unknown_url`, as API Gateway answers them (its MISSING_AUTHENTICATION_TOKEN
   * response, see infra/constructs/api.ts), so the local platform and AWS answer alike.
   */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const found = route.regex.exec(path);
      if (!found) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = decodeURIComponent(found[i + 1]!);
      });
      return { route, params };
    }
    throw new NotFoundError(`Unknown path or method: ${method} ${path}.`, "unknown_url");
  }
}

/** Parses a JSON body; a malformed or non-object body is a 400, not a 500. */
export function jsonBody(request: RequestContext): Record<string, unknown> {
  if (request.body.length === 0) throw new InvalidRequestError("The request body must be a JSON object.");
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body.toString("utf8"));
  } catch {
    throw new InvalidRequestError("The request body is not valid JSON.", null, "invalid_json");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new InvalidRequestError("The request body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

export { PlatformError };
