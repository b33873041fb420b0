import type { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { type ApiKeyRecord, generateApiKey, newTenantId } from "../../lambdas/core/tenants/api-keys.ts";

/** Operator commands on tenants and their keys; each returns the lines to print. */
export class TenantAdmin {
  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /** A new tenant and its first key. The key is returned once and never stored. */
  async createTenant(name: string): Promise<{ tenantId: string; keyId: string; apiKey: string }> {
    if (!/^[\w .@-]{1,64}$/.test(name)) {
      throw new UsageError("tenant name: 1-64 letters, digits, spaces, '.', '@', '_' or '-'");
    }
    const tenantId = newTenantId();
    const created = await this.createKey(tenantId, name);
    return { tenantId, ...created };
  }

  async createKey(tenantId: string, tenantName?: string): Promise<{ keyId: string; apiKey: string }> {
    let name = tenantName;
    if (!name) {
      const existing = await this.keys.listByTenant(tenantId);
      if (existing.length === 0)
        throw new UsageError(`no tenant ${tenantId}; create it with 'ftctl admin tenants create <name>'`);
      name = existing[0]!.tenantName;
    }
    const key = generateApiKey();
    await this.keys.create({
      keyHash: key.keyHash,
      keyId: key.keyId,
      tenantId,
      tenantName: name,
      createdAt: this.now(),
      hint: `${key.key.slice(0, 8)}…`,
    });
    return { keyId: key.keyId, apiKey: key.key };
  }

  async listKeys(tenantId?: string): Promise<ApiKeyRecord[]> {
    const records = tenantId ? await this.keys.listByTenant(tenantId) : await this.keys.listAll();
    return records.sort((a, b) => a.tenantId.localeCompare(b.tenantId) || a.createdAt - b.createdAt);
  }

  async listTenants(): Promise<{ tenantId: string; tenantName: string; activeKeys: number }[]> {
    const tenants = new Map<string, { tenantId: string; tenantName: string; activeKeys: number }>();
    for (const record of await this.keys.listAll()) {
      const tenant = tenants.get(record.tenantId) ?? {
        tenantId: record.tenantId,
        tenantName: record.tenantName,
        activeKeys: 0,
      };
      if (!record.revokedAt) tenant.activeKeys++;
      tenants.set(record.tenantId, tenant);
    }
    return [...tenants.values()].sort((a, b) => a.tenantName.localeCompare(b.tenantName));
  }

  async revokeKey(keyId: string): Promise<ApiKeyRecord> {
    const record = await this.keys.revoke(keyId, this.now());
    if (!record) throw new UsageError(`no API key ${keyId}`);
    return record;
  }
}

/** A mistake in what the operator typed: printed as is, exit code 2. */
export class UsageError extends Error {}
