import { describe, expect, it } from "vitest";
import { AuthenticationError } from "../../../lambdas/core/errors.ts";
import { bearerToken, generateApiKey, hashApiKey } from "../../../lambdas/core/tenants/api-keys.ts";
import { authenticate, authorize } from "../../../lambdas/core/tenants/authorize.ts";

describe("API keys", () => {
  it("generates distinct prefixed keys and stores only a SHA-256 hash", () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^ftk_[A-Za-z0-9_-]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.keyHash).toBe(hashApiKey(a.key));
    expect(a.keyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.keyHash).not.toContain(a.key.slice(4, 12));
  });

  it.each([
    [undefined, undefined],
    ["", undefined],
    ["Basic abc", undefined],
    ["Bearer", undefined],
    ["Bearer   ftk_abc  ", "ftk_abc"],
    ["bearer ftk_abc", "ftk_abc"],
    [`Bearer ${"x".repeat(300)}`, undefined],
  ])("reads the bearer token of %j as %j", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});

describe("authenticate", () => {
  const key = generateApiKey();
  const keys = {
    async findByHash(hash: string) {
      if (hash === key.keyHash) return { tenantId: "tn_a", keyId: key.keyId };
      if (hash === hashApiKey("ftk_revoked")) return { tenantId: "tn_a", keyId: "key_r", revokedAt: 1 };
      return undefined;
    },
  };

  it("returns the tenant of a valid key", async () => {
    await expect(authenticate(`Bearer ${key.key}`, keys)).resolves.toEqual({
      tenantId: "tn_a",
      keyId: key.keyId,
    });
  });

  it.each([
    ["a missing header", undefined, "invalid_api_key"],
    ["an unknown key", "Bearer ftk_unknown", "invalid_api_key"],
    ["a revoked key", "Bearer ftk_revoked", "api_key_revoked"],
  ])("rejects %s with 401", async (_, header, code) => {
    const attempt = authenticate(header, keys);
    await expect(attempt).rejects.toBeInstanceOf(AuthenticationError);
    await expect(attempt).rejects.toMatchObject({ status: 401, code });
  });
});

describe("authorize (the TOKEN authorizer's answer)", () => {
  const key = generateApiKey();
  const keys = {
    async findByHash(hash: string) {
      return hash === key.keyHash ? { tenantId: "tn_a", keyId: key.keyId } : undefined;
    },
  };
  const methodArn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/v4/files";

  it("returns the tenant's usage plan key as usageIdentifierKey, with the tenant in the context", async () => {
    const usageKeys = { usageKeyValue: async (t: string) => (t === "tn_a" ? "f00d".repeat(16) : undefined) };
    const decision = await authorize(`Bearer ${key.key}`, methodArn, keys, usageKeys);
    expect(decision).toEqual({
      principalId: "tn_a",
      policyDocument: {
        Version: "2012-10-17",
        Statement: [
          {
            Action: "execute-api:Invoke",
            Effect: "Allow",
            Resource: "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*/*",
          },
        ],
      },
      context: { tenantId: "tn_a", keyId: key.keyId },
      usageIdentifierKey: "f00d".repeat(16),
    });
  });

  it("still authorizes a tenant without a usage plan key, returning no usageIdentifierKey", async () => {
    const decision = await authorize(`Bearer ${key.key}`, methodArn, keys, {
      usageKeyValue: async () => undefined,
    });
    expect(decision.principalId).toBe("tn_a");
    expect(decision).not.toHaveProperty("usageIdentifierKey");
  });

  it("rejects an unknown key before reading any usage key", async () => {
    let reads = 0;
    const usageKeys = {
      usageKeyValue: async () => {
        reads++;
        return "x";
      },
    };
    await expect(authorize("Bearer ftk_unknown", methodArn, keys, usageKeys)).rejects.toBeInstanceOf(
      AuthenticationError,
    );
    expect(reads).toBe(0);
  });
});
