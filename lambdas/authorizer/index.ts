import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../aws/api-keys-repository.ts";
import { documentClient } from "../aws/clients.ts";
import { tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { TenantSettingsRepository } from "../aws/tenant-settings-repository.ts";
import { AuthenticationError } from "../core/errors.ts";
import { authorize } from "../core/tenants/authorize.ts";

const { logger } = observability(SERVICES.authorizer);
const keys = new ApiKeysRepository(documentClient(), tableName("api-keys"));
const tenants = new TenantSettingsRepository(documentClient(), tableName("tenants"));

/**
 * TOKEN authorizer: `Authorization: Bearer <key>` → tenant id in the request context, and the tenant's
 * usage plan key as `usageIdentifierKey`. API Gateway caches the whole answer per key (the stage's
 * authorizer TTL), so the tenants table is read once per key and TTL, not per request.
 */
export async function handler(event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  try {
    return await authorize(event.authorizationToken, event.methodArn, keys, tenants);
  } catch (error) {
    if (!(error instanceof AuthenticationError)) logger.error("authorizer failed", { error: error as Error });
    // The only way to make API Gateway answer 401; the gateway response turns it into the error envelope.
    throw new Error("Unauthorized");
  }
}
