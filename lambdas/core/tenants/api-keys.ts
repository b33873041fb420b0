import { createHash, randomBytes } from "node:crypto";

/** Visible prefix of every key, so leaked keys are easy to find by secret scanners. */
export const API_KEY_PREFIX = "ftk_";

export interface NewApiKey {
  /** Shown once to the operator; never stored. */
  readonly key: string;
  readonly keyId: string;
  readonly keyHash: string;
}

/** 32 random bytes (256 bits): a hash of it needs no salt or slow KDF to resist guessing. */
export function generateApiKey(): NewApiKey {
  const key = API_KEY_PREFIX + randomBytes(32).toString("base64url");
  return { key, keyId: `key_${randomBytes(8).toString("hex")}`, keyHash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** The key from an `Authorization: Bearer <key>` header, or undefined when absent or malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const token = match?.[1];
  // Bound the length before hashing: a header of megabytes is not a key.
  return token && token.length <= 256 ? token : undefined;
}

export interface ApiKeyRecord {
  readonly keyHash: string;
  readonly keyId: string;
  readonly tenantId: string;
  readonly tenantName: string;
  readonly createdAt: number;
  readonly revokedAt?: number;
  /** The key's first characters, for the operator to tell keys apart. */
  readonly hint: string;
}

export function newTenantId(): string {
  return `tn_${randomBytes(8).toString("hex")}`;
}
