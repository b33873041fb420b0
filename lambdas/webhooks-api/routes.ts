import { InvalidRequestError, NotFoundError, RateLimitError } from "../core/errors.ts";
import { jsonBody, type Route } from "../core/http/router.ts";
import {
  type EndpointRecord,
  MAX_ENDPOINTS_PER_TENANT,
  newEndpointId,
  parseCreateEndpoint,
  RECENT_DELIVERIES,
  toDeliveryWire,
  toEndpointWire,
} from "../core/webhooks/endpoint.ts";
import { testEvent } from "../core/webhooks/events.ts";
import type { DeliveryLog, DeliveryQueue, EndpointStore } from "../core/webhooks/ports.ts";
import { newWebhookSecret } from "../core/webhooks/signing.ts";
import { checkWebhookUrl, type Resolver, type UrlPolicy, UrlRefused } from "../core/webhooks/url-policy.ts";

export interface WebhooksDependencies {
  readonly endpoints: EndpointStore;
  readonly deliveries: Pick<DeliveryLog, "recent">;
  readonly queue: Pick<DeliveryQueue, "send">;
  readonly policy: UrlPolicy;
  readonly resolve: Resolver;
  /** Unix seconds. */
  readonly now: () => number;
  readonly newId?: () => string;
  readonly newSecret?: () => string;
}

/**
 * The webhooks API, per tenant (the tenant from the authorizer; another tenant's endpoint is a 404):
 * create (the secret shown this once), list, get with recent deliveries, deliveries, delete, test.
 */
export function webhooksRoutes(deps: WebhooksDependencies): Route[] {
  const find = async (tenantId: string, endpointId: string): Promise<EndpointRecord> => {
    const endpoint = await deps.endpoints.get(tenantId, endpointId);
    if (!endpoint)
      throw new NotFoundError(
        `No webhook endpoint found with id '${endpointId.slice(0, 100)}'.`,
        "not_found",
        "webhook_id",
      );
    return endpoint;
  };
  return [
    {
      method: "POST",
      pattern: "/v4/webhooks",
      handler: async (request) => {
        const body = parseCreateEndpoint(jsonBody(request));
        try {
          await checkWebhookUrl(body.url, deps.policy, deps.resolve);
        } catch (error) {
          if (error instanceof UrlRefused) throw new InvalidRequestError(error.message, "url", error.code);
          throw error;
        }
        const existing = await deps.endpoints.list(request.tenantId);
        if (existing.length >= MAX_ENDPOINTS_PER_TENANT) {
          throw new RateLimitError(
            `A tenant may have at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints; delete one first.`,
            "webhook_endpoint_limit",
          );
        }
        const record: EndpointRecord = {
          tenantId: request.tenantId,
          endpointId: (deps.newId ?? newEndpointId)(),
          url: body.url,
          events: body.events,
          secret: (deps.newSecret ?? newWebhookSecret)(),
          createdAt: deps.now(),
        };
        await deps.endpoints.put(record);
        return { status: 200, body: toEndpointWire(record, { withSecret: true }) };
      },
    },
    {
      method: "GET",
      pattern: "/v4/webhooks",
      handler: async (request) => {
        const endpoints = await deps.endpoints.list(request.tenantId);
        return {
          status: 200,
          body: { object: "list", data: endpoints.map((e) => toEndpointWire(e)), has_more: false },
        };
      },
    },
    {
      method: "GET",
      pattern: "/v4/webhooks/{webhook_id}",
      handler: async (request) => {
        const endpoint = await find(request.tenantId, request.params.webhook_id!);
        const recent = await deps.deliveries.recent(request.tenantId, endpoint.endpointId, RECENT_DELIVERIES);
        return {
          status: 200,
          body: { ...toEndpointWire(endpoint), recent_deliveries: recent.map(toDeliveryWire) },
        };
      },
    },
    {
      method: "GET",
      pattern: "/v4/webhooks/{webhook_id}/deliveries",
      handler: async (request) => {
        const endpoint = await find(request.tenantId, request.params.webhook_id!);
        const recent = await deps.deliveries.recent(request.tenantId, endpoint.endpointId, RECENT_DELIVERIES);
        return { status: 200, body: { object: "list", data: recent.map(toDeliveryWire), has_more: false } };
      },
    },
    {
      method: "DELETE",
      pattern: "/v4/webhooks/{webhook_id}",
      handler: async (request) => {
        const id = request.params.webhook_id!;
        if (!(await deps.endpoints.delete(request.tenantId, id))) await find(request.tenantId, id);
        return { status: 200, body: { object: "webhook_endpoint.deleted", id, deleted: true } };
      },
    },
    {
      method: "POST",
      pattern: "/v4/webhooks/{webhook_id}/test",
      handler: async (request) => {
        const endpoint = await find(request.tenantId, request.params.webhook_id!);
        // Each test is its own event: the request id makes its id (a retried request sends another).
        const event = testEvent(endpoint.endpointId, request.requestId, deps.now());
        await deps.queue.send(
          { tenantId: request.tenantId, endpointId: endpoint.endpointId, event, attempt: 1 },
          0,
        );
        return {
          status: 202,
          body: {
            object: "webhook_endpoint.test",
            id: endpoint.endpointId,
            event_id: event.id,
            type: event.type,
            status: "queued",
          },
        };
      },
    },
  ];
}
