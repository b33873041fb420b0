import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { GetCommand, QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { TERMINAL_STATUSES } from "../core/jobs/state-machine.ts";
import {
  effectiveQuotas,
  type FileHoldings,
  type QuotaName,
  type QuotaOverrides,
  type TenantQuotas,
} from "../core/tenants/quotas.ts";

/** A tenant's settings item: the operator's quota overrides (absent ones take the defaults). */
export interface TenantSettings {
  readonly tenantId: string;
  readonly quotas?: QuotaOverrides;
  /**
   * The tenant's API Gateway API key in the usage plan (AWS only): its id, and its value, which the
   * authorizer returns as `usageIdentifierKey`. Never shown to the tenant; it is not a credential of the
   * API (the bearer key is), only the counter the plan's limits apply to.
   */
  readonly usageKeyId?: string;
  readonly usageKeyValue?: string;
  readonly updatedAt?: number;
}

/** The tenants table: one settings item per tenant, written by the operator (ftctl), read by the APIs. */
export class TenantSettingsRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(tenantId: string): Promise<TenantSettings | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { tenantId } }),
    );
    return Item as TenantSettings | undefined;
  }

  /** Sets the given quota overrides, keeping the others; returns the item as it is now. */
  async setQuotas(tenantId: string, quotas: QuotaOverrides, now: number): Promise<TenantSettings> {
    const entries = Object.entries(quotas).filter(([, v]) => v !== undefined) as [QuotaName, number][];
    // Read, merge, write: an operator's command, not a request path (two at once may lose one's change).
    const current = await this.get(tenantId);
    const merged: QuotaOverrides = { ...(current?.quotas ?? {}), ...Object.fromEntries(entries) };
    const { Attributes } = await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { tenantId },
        UpdateExpression: "SET quotas = :q, updatedAt = :now",
        ExpressionAttributeValues: { ":q": merged, ":now": now },
        ReturnValues: "ALL_NEW",
      }),
    );
    return Attributes as TenantSettings;
  }

  /** The tenant's usage plan key value, or undefined (the authorizer's read: one projected GetItem). */
  async usageKeyValue(tenantId: string): Promise<string | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { tenantId },
        ProjectionExpression: "usageKeyValue",
      }),
    );
    return typeof Item?.usageKeyValue === "string" ? Item.usageKeyValue : undefined;
  }

  /** Records the tenant's usage plan key, keeping its other settings. */
  async setUsageKey(tenantId: string, key: { id: string; value: string }, now: number): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { tenantId },
        UpdateExpression: "SET usageKeyId = :id, usageKeyValue = :value, updatedAt = :now",
        ExpressionAttributeValues: { ":id": key.id, ":value": key.value, ":now": now },
      }),
    );
  }

  /** Every tenant's settings: an operator's listing, not a request path. */
  async listAll(): Promise<TenantSettings[]> {
    const items: TenantSettings[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new ScanCommand({ TableName: this.tableName, ExclusiveStartKey: start }),
      );
      items.push(...((page.Items ?? []) as TenantSettings[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

/** A tenant's effective quotas: the operator's defaults with the tenant's overrides (one GetItem). */
export function quotasReader(
  settings: Pick<TenantSettingsRepository, "get">,
  defaults: TenantQuotas,
): (tenantId: string) => Promise<TenantQuotas> {
  return async (tenantId) => effectiveQuotas(defaults, (await settings.get(tenantId))?.quotas);
}

/** The tenant's files and the sum of their sizes: a query over its partition reading `bytes` only. */
export async function fileHoldings(
  documents: DynamoDBDocumentClient,
  filesTable: string,
  tenantId: string,
): Promise<FileHoldings> {
  let files = 0;
  let storedBytes = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new QueryCommand({
        TableName: filesTable,
        KeyConditionExpression: "tenantId = :t",
        ExpressionAttributeNames: { "#bytes": "bytes" },
        ExpressionAttributeValues: { ":t": tenantId },
        ProjectionExpression: "#bytes",
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      files++;
      storedBytes += typeof item.bytes === "number" ? item.bytes : 0;
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return { files, storedBytes };
}

/** The tenant's jobs whose status is not terminal: a counting query over its partition. */
export async function unfinishedJobs(
  documents: DynamoDBDocumentClient,
  jobsTable: string,
  tenantId: string,
): Promise<number> {
  const terminal = Object.fromEntries(TERMINAL_STATUSES.map((s, i) => [`:s${i}`, s]));
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new QueryCommand({
        TableName: jobsTable,
        KeyConditionExpression: "tenantId = :t",
        FilterExpression: `NOT (#status IN (${Object.keys(terminal).join(", ")}))`,
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":t": tenantId, ...terminal },
        Select: "COUNT",
        ExclusiveStartKey: start,
      }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return count;
}
