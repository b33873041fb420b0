import { InvalidRequestError } from "../errors.ts";

export interface ListParams {
  readonly limit: number;
  readonly after?: string;
}

/** The query parameters of a list endpoint ({@link parseListParams}), for its route's `query`. */
export const LIST_QUERY = ["limit", "after"] as const;

/** `limit` (1..max, default `defaultLimit`) and `after` (an object id) of OpenAI-style list endpoints. */
export function parseListParams(
  query: Readonly<Record<string, string>>,
  options: { defaultLimit: number; maxLimit: number; idPattern?: RegExp },
): ListParams {
  let limit = options.defaultLimit;
  if (query.limit !== undefined) {
    limit = Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > options.maxLimit) {
      throw new InvalidRequestError(`limit must be an integer from 1 to ${options.maxLimit}.`, "limit");
    }
  }
  const after = query.after;
  if (after !== undefined && (after.length === 0 || (options.idPattern && !options.idPattern.test(after)))) {
    throw new InvalidRequestError("after must be the id of an object from a previous page.", "after");
  }
  return after === undefined ? { limit } : { limit, after };
}

/** The OpenAI list envelope. */
export function listEnvelope<T extends { id: string }>(data: T[], hasMore: boolean) {
  return {
    object: "list" as const,
    data,
    has_more: hasMore,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
  };
}
