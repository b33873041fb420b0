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
