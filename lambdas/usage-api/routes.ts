import type { Route } from "../core/http/router.ts";
import { parseUsageQuery, USAGE_QUERY } from "../core/usage/query.ts";
import type { UsageReader } from "../core/usage/usage.ts";
import { toUsageList } from "../core/usage/wire.ts";

export interface UsageDependencies {
  readonly usage: UsageReader;
}

/** The usage API: `GET /v4/usage`, the calling tenant's chat tokens per UTC day and model. */
export function usageRoutes(deps: UsageDependencies): Route[] {
  return [
    {
      method: "GET",
      pattern: "/v4/usage",
      query: USAGE_QUERY,
      handler: async (request) => {
        const range = parseUsageQuery(request.query);
        // The tenant from the authorizer: a tenant reads its own usage, never another's.
        const days = await deps.usage.daily(request.tenantId, range.start, range.end);
        return { status: 200, body: toUsageList(range, days) };
      },
    },
  ];
}
