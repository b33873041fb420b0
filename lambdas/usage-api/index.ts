import type { APIGatewayProxyEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient } from "../aws/clients.ts";
import { tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { UsageRepository } from "../aws/usage-repository.ts";
import { handleApiEvent } from "../core/http/api-gateway.ts";
import type { HttpResponse } from "../core/http/response.ts";
import { Router } from "../core/http/router.ts";
import { usageRoutes } from "./routes.ts";

const { logger } = observability(SERVICES.usageApi);
const router = new Router(usageRoutes({ usage: new UsageRepository(documentClient(), tableName("usage")) }));

/** `GET /v4/usage` behind the API key authorizer. */
export async function handler(event: APIGatewayProxyEvent): Promise<HttpResponse> {
  return handleApiEvent(router, event, (message, details) => logger.error(message, details));
}
