import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  DELIVERY_RECORD_DAYS,
  type DeliveryRecord,
  deliveryKey,
  type EndpointRecord,
  endpointKey,
  MAX_ENDPOINTS_PER_TENANT,
} from "../core/webhooks/endpoint.ts";
import type { AttemptRecord, DeliveryLog, EndpointStore } from "../core/webhooks/ports.ts";

/** The `webhooks` table: a tenant's endpoints, every access keyed by the tenant. */
export class WebhookEndpointsRepository implements EndpointStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async put(record: EndpointRecord): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: record,
        ConditionExpression: "attribute_not_exists(endpointId)",
      }),
    );
  }

  async get(tenantId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { tenantId, endpointId }, ConsistentRead: true }),
    );
    return Item as EndpointRecord | undefined;
  }

  async list(tenantId: string): Promise<EndpointRecord[]> {
    // A tenant holds at most MAX_ENDPOINTS_PER_TENANT small items: one page.
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "tenantId = :tenant",
        ExpressionAttributeValues: { ":tenant": tenantId },
        Limit: MAX_ENDPOINTS_PER_TENANT * 10,
      }),
    );
    return (Items as EndpointRecord[]).sort((a, b) => a.createdAt - b.createdAt);
  }

  async delete(tenantId: string, endpointId: string): Promise<boolean> {
    const { Attributes } = await this.documents.send(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { tenantId, endpointId },
        ReturnValues: "ALL_OLD",
      }),
    );
    return Attributes !== undefined;
  }
}

/** The `webhook-deliveries` table: one item per (endpoint, event), updated by each attempt; expires. */
export class WebhookDeliveriesRepository implements DeliveryLog {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * `ADD attempts 1` and the attempt's outcome. A delivered record stays delivered: a late duplicate
   * attempt (the queue delivers at least once) adds its attempt but does not mark it pending again.
   */
  async recordAttempt(attempt: AttemptRecord): Promise<void> {
    const values: Record<string, unknown> = {
      ":one": 1,
      ":eventId": attempt.event.id,
      ":type": attempt.event.type,
      ":code": attempt.statusCode,
      ":error": attempt.error,
      ":at": attempt.attemptedAt,
      ":next": attempt.nextAttemptAt,
      ":expires": attempt.attemptedAt + DELIVERY_RECORD_DAYS * 86_400,
      ":status": attempt.status,
      ":delivered": "delivered",
    };
    const sets = [
      "eventId = :eventId",
      "#type = :type",
      "lastStatusCode = :code",
      "lastError = :error",
      "lastAttemptAt = :at",
      "nextAttemptAt = :next",
      "expiresAt = :expires",
      // Delivered wins over anything a duplicate attempt reports later.
      "#status = if_not_exists(deliveredStatus, :status)",
    ];
    if (attempt.status === "delivered") {
      sets.push("deliveredAt = if_not_exists(deliveredAt, :at)", "deliveredStatus = :delivered");
    }
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: {
          endpointKey: endpointKey(attempt.tenantId, attempt.endpointId),
          deliveryKey: deliveryKey(attempt.event),
        },
        UpdateExpression: `ADD attempts :one SET ${sets.join(", ")}`,
        ExpressionAttributeNames: { "#type": "type", "#status": "status" },
        ExpressionAttributeValues: Object.fromEntries(
          Object.entries(values).filter(([name]) => name !== ":delivered" || attempt.status === "delivered"),
        ),
      }),
    );
  }

  async recent(tenantId: string, endpointId: string, limit: number): Promise<DeliveryRecord[]> {
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "endpointKey = :key",
        ExpressionAttributeValues: { ":key": endpointKey(tenantId, endpointId) },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (Items as (DeliveryRecord & { deliveredAt?: number })[]).map((item) => ({
      ...item,
      deliveredAt: item.deliveredAt ?? null,
    }));
  }
}
