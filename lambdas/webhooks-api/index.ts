import type { APIGatewayProxyEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, sqsClient } from "../aws/clients.ts";
import { configEnv, type Env, queueUrl, tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { SqsDeliveryQueue } from "../aws/webhooks-queue.ts";
import { WebhookDeliveriesRepository, WebhookEndpointsRepository } from "../aws/webhooks-repository.ts";
import { handleApiEvent } from "../core/http/api-gateway.ts";
import type { HttpResponse } from "../core/http/response.ts";
import { Router } from "../core/http/router.ts";
import { resolveAll } from "../webhook-delivery/http-sender.ts";
import { type WebhooksDependencies, webhooksRoutes } from "./routes.ts";

const { logger } = observability(SERVICES.webhooksApi);

/** The API's dependencies from the environment (CDK or the local platform). */
export function webhooksDependencies(env: Env = process.env): WebhooksDependencies {
  return {
    endpoints: new WebhookEndpointsRepository(documentClient(), tableName("webhooks", env)),
    deliveries: new WebhookDeliveriesRepository(documentClient(), tableName("webhook-deliveries", env)),
    queue: new SqsDeliveryQueue(sqsClient(), queueUrl("webhook-deliveries", env)),
    policy: { allowPrivate: configEnv("webhookAllowPrivate", env) === "1" },
    resolve: resolveAll,
    now: () => Math.floor(Date.now() / 1000),
  };
}

const router = new Router(webhooksRoutes(webhooksDependencies()));

/** `/v4/webhooks…` behind the API key authorizer. */
export async function handler(event: APIGatewayProxyEvent): Promise<HttpResponse> {
  return handleApiEvent(router, event, (message, details) => logger.error(message, details));
}
