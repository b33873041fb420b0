import { randomBytes } from "node:crypto";
import {
  type APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
} from "@aws-sdk/client-api-gateway";

/** A tenant's API Gateway API key: its id and value (the value the authorizer returns). */
export interface UsageKey {
  readonly id: string;
  readonly value: string;
}

/**
 * The tenants' usage plan (infra/constructs/api.ts): one API Gateway API key per tenant in it. Used by
 * `ftctl admin` only; the key is a counter for the plan's limits, never given to the tenant.
 */
export class UsagePlanKeys {
  constructor(
    private readonly client: APIGatewayClient,
    readonly usagePlanId: string,
  ) {}

  /** A new enabled key named after the tenant, attached to the plan. */
  async issue(tenantId: string): Promise<UsageKey> {
    // Hex: API Gateway wants 20-128 characters, and nothing the tenant could mistake for its bearer key.
    const value = randomBytes(32).toString("hex");
    const created = await this.client.send(
      new CreateApiKeyCommand({
        name: tenantId,
        description: `Usage plan key of tenant ${tenantId} (ftctl admin)`,
        enabled: true,
        value,
        tags: { tenantId, "managed-by": "ftctl" },
      }),
    );
    if (!created.id) throw new Error(`API Gateway returned no id for the key of ${tenantId}`);
    try {
      await this.client.send(
        new CreateUsagePlanKeyCommand({
          usagePlanId: this.usagePlanId,
          keyId: created.id,
          keyType: "API_KEY",
        }),
      );
    } catch (error) {
      // A key outside the plan is of no use; do not leave it behind (best effort).
      try {
        await this.client.send(new DeleteApiKeyCommand({ apiKey: created.id }));
      } catch {
        // The original error is the one to report.
      }
      throw error;
    }
    return { id: created.id, value };
  }
}
