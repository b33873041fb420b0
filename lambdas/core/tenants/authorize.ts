import { AuthenticationError } from "../errors.ts";
import { bearerToken, hashApiKey } from "./api-keys.ts";

export interface KeyLookup {
  findByHash(keyHash: string): Promise<{ tenantId: string; keyId: string; revokedAt?: number } | undefined>;
}

/** The tenant an `Authorization` header proves; AuthenticationError for a missing, unknown or revoked key. */
export async function authenticate(
  authorization: string | undefined,
  keys: KeyLookup,
): Promise<{ tenantId: string; keyId: string }> {
  const token = bearerToken(authorization);
  if (!token) throw new AuthenticationError();
  const record = await keys.findByHash(hashApiKey(token));
  if (!record) throw new AuthenticationError("Incorrect API key provided.");
  if (record.revokedAt) throw new AuthenticationError("This API key has been revoked.", "api_key_revoked");
  return { tenantId: record.tenantId, keyId: record.keyId };
}

/** Where the authorizer finds a tenant's usage plan key value; undefined for a tenant without one. */
export interface UsageKeyLookup {
  usageKeyValue(tenantId: string): Promise<string | undefined>;
}

/** A TOKEN authorizer's answer (the shape API Gateway reads; no AWS types in the core). */
export interface AuthorizerDecision {
  principalId: string;
  policyDocument: {
    Version: "2012-10-17";
    Statement: { Action: "execute-api:Invoke"; Effect: "Allow"; Resource: string }[];
  };
  context: { tenantId: string; keyId: string };
  /** The tenant's API Gateway key: its usage plan counts the request against the tenant's limits. */
  usageIdentifierKey?: string;
}

/**
 * The decision for an `Authorization` header on a method: allow every route of the stage (API Gateway
 * caches the decision per key for all of them, the usage key with it), with the tenant in the context.
 * A tenant without a usage key gets none: locally nothing needs one; in AWS the usage plan refuses the
 * request until `ftctl admin tenants sync-usage-keys` gives the tenant one.
 */
export async function authorize(
  authorization: string | undefined,
  methodArn: string,
  keys: KeyLookup,
  usageKeys: UsageKeyLookup,
): Promise<AuthorizerDecision> {
  const { tenantId, keyId } = await authenticate(authorization, keys);
  const usageIdentifierKey = await usageKeys.usageKeyValue(tenantId);
  const [arnPrefix, stage] = methodArn.split("/");
  return {
    principalId: tenantId,
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: `${arnPrefix}/${stage}/*/*` }],
    },
    context: { tenantId, keyId },
    ...(usageIdentifierKey ? { usageIdentifierKey } : {}),
  };
}
