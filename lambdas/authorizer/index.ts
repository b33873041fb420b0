import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../aws/api-keys-repository.ts";
import { documentClient } from "../aws/clients.ts";
import { tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { AuthenticationError } from "../core/errors.ts";
import { authenticate } from "../core/tenants/authorize.ts";

const { logger } = observability(SERVICES.authorizer);
const keys = new ApiKeysRepository(documentClient(), tableName("api-keys"));

/**
 * TOKEN authorizer: `Authorization: Bearer <key>` → tenant id in the request context. The policy covers
 * every route of the stage, because API Gateway caches it per key for all of them.
 */
export async function handler(event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  try {
    const { tenantId, keyId } = await authenticate(event.authorizationToken, keys);
    const [arnPrefix, stage] = event.methodArn.split("/");
    return {
      principalId: tenantId,
      policyDocument: {
        Version: "2012-10-17",
        Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: `${arnPrefix}/${stage}/*/*` }],
      },
      context: { tenantId, keyId },
    };
  } catch (error) {
    if (!(error instanceof AuthenticationError)) logger.error("authorizer failed", { error: error as Error });
    // The only way to make API Gateway answer 401; the gateway response turns it into the error envelope.
    throw new Error("Unauthorized");
  }
}
