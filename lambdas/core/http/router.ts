import { InvalidRequestError, MethodNotAllowedError, NotFoundError, PlatformError } from "../errors.ts";
import { requireJsonBody } from "./content-type.ts";

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
  /**
   * The query parameters the route takes; any other is a 400 `unknown_parameter` (a misspelt `limt`
   * must not silently be ignored). None when absent.
   */
  readonly query?: readonly string[];
  readonly handler: RouteHandler;
}

interface CompiledRoute extends Route {
  readonly regex: RegExp;
  readonly names: string[];
  /** Per segment, whether it is literal: API Gateway prefers `/files/uploads` to `/files/{file_id}`. */
  readonly literals: boolean[];
  /** The pattern with its parameters unnamed: `/v4/files/{}`. */
  readonly shape: string;
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
      const literals = route.pattern.split("/").map((segment) => !/^\{\w+\}$/.test(segment));
      const shape = route.pattern.replace(/\{\w+\}/g, "{}");
      return { ...route, names, literals, shape, regex: new RegExp(`^${source}/?$`) };
    });
  }

  /**
   * The matching route and its decoded path parameters, resolved as API Gateway resolves resources: of
   * the patterns the path matches, the one with a literal segment where the others have a parameter.
   * An unknown path is a 404 `unknown_url` (API Gateway's own answer, its MISSING_AUTHENTICATION_TOKEN
   * response in infra/constructs/api.ts); a method the path does not have is a 405 naming the path's
   * methods (API Gateway hands such methods to the function through each resource's `ANY` method);
   * a path parameter with a malformed `%` escape is a 400.
   */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    const matching = this.routes.filter((route) => route.regex.test(path));
    const best = matching.reduce<CompiledRoute | undefined>(
      (chosen, route) => (chosen && !moreSpecific(route.literals, chosen.literals) ? chosen : route),
      undefined,
    );
    if (!best) throw new NotFoundError(`Unknown path: ${method} ${path}.`, "unknown_url");
    const candidates = matching.filter((route) => route.shape === best.shape);
    const route = candidates.find((candidate) => candidate.method === method);
    if (!route) {
      const allow = [...new Set(candidates.map((candidate) => candidate.method))].sort();
      throw new MethodNotAllowedError(method, path, allow);
    }
    const found = route.regex.exec(path)!;
    const params: Record<string, string> = {};
    route.names.forEach((name, i) => {
      const raw = found[i + 1]!;
      try {
        params[name] = decodeURIComponent(raw);
      } catch {
        throw new InvalidRequestError(
          `The path segment '${raw.slice(0, 100)}' has a malformed percent-escape.`,
          name,
          "invalid_path",
        );
      }
    });
    return { route, params };
  }
}

/** Whether `a` has a literal segment where `b` has a parameter, at the first segment where they differ. */
function moreSpecific(a: readonly boolean[], b: readonly boolean[]): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]!;
  }
  return false;
}

/**
 * A 400 `unknown_parameter` naming every query parameter the route does not take, `param` the first.
 * The usage API's own parser says the same (lambdas/core/usage/query.ts).
 */
export function rejectUnknownQuery(
  query: Readonly<Record<string, string>>,
  accepted: readonly string[],
  endpoint: string,
): void {
  const unknown = Object.keys(query).filter((name) => !accepted.includes(name));
  if (unknown.length === 0) return;
  const takes = accepted.length > 0 ? `takes ${accepted.join(", ")}` : "takes no query parameters";
  throw new InvalidRequestError(
    `Unknown query parameter${unknown.length > 1 ? "s" : ""} ${unknown.map((name) => `'${name.slice(0, 100)}'`).join(", ")}; ${endpoint} ${takes}.`,
    unknown[0]!,
    "unknown_parameter",
  );
}

/**
 * Parses a JSON body; a malformed or non-object body is a 400, not a 500, and a body not declared
 * `application/json` a 415 (an empty one stays a 400: nothing was sent to declare).
 */
export function jsonBody(request: RequestContext): Record<string, unknown> {
  requireJsonBody(request.body, request.headers["content-type"]);
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
