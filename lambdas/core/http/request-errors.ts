import type { z } from "zod";
import { InvalidRequestError } from "../errors.ts";

/**
 * A zod error as a 400 naming its path. Unknown fields win over other issues: a misspelt field is the
 * likelier cause of a neighbouring "required" error.
 */
export function toInvalidRequest(error: z.ZodError): InvalidRequestError {
  const issue = error.issues.find((candidate) => candidate.code === "unrecognized_keys") ?? error.issues[0];
  const path = issue?.path.map(String).join(".") ?? "";
  if (issue?.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    const param = path ? `${path}.${key}` : key;
    return new InvalidRequestError(`Unknown parameter '${param}'.`, param, "unknown_parameter");
  }
  if (issue?.code === "invalid_type" && issue.input === undefined) {
    return new InvalidRequestError(
      `Missing required parameter '${path}'.`,
      path || null,
      "missing_required_parameter",
    );
  }
  if (issue?.code === "invalid_key") {
    const inner = issue.issues[0]?.message ?? "invalid key";
    return new InvalidRequestError(`Invalid key in ${path}: ${inner}.`, path || null);
  }
  return new InvalidRequestError(
    `Invalid ${path || "request"}: ${issue?.message ?? "invalid value"}.`,
    path || null,
  );
}
