import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import {
  type DeployerMessage,
  type DeploymentChange,
  type DeploymentQueue,
  type DeploymentRecord,
  type DeploymentStatus,
  type DeploymentsStore,
  isLive,
  type StartDeploymentOutcome,
} from "../core/deployments/deployment.ts";
import type { FineTunedModelStatus, ModelRecord } from "../core/jobs/wire.ts";
import { getModelRecord } from "./model-lookup.ts";

const isConditionFailure = (error: unknown) =>
  (error as { name?: string }).name === "ConditionalCheckFailedException";

/**
 * Deployments as the `deployment` attribute of their model's item in the models table: the model code
 * is already the key chat reads, so chat finds the server's address in the one GetItem it makes.
 * Every change is conditional on the deployment id and status it expects.
 */
export class DeploymentsRepository implements DeploymentsStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly modelsTable: string,
  ) {}

  getModel(modelCode: string): Promise<ModelRecord | undefined> {
    return getModelRecord(this.documents, this.modelsTable, modelCode);
  }

  async startDeployment(
    tenantId: string,
    modelCode: string,
    deployment: DeploymentRecord,
  ): Promise<StartDeploymentOutcome> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.modelsTable,
          Key: { modelCode },
          UpdateExpression: "SET deployment = :d",
          ConditionExpression:
            "tenantId = :t AND #status = :ready AND #method = :full AND " +
            "(attribute_not_exists(deployment) OR NOT deployment.#status IN (:deploying, :deployed))",
          ExpressionAttributeNames: { "#status": "status", "#method": "method" },
          ExpressionAttributeValues: {
            ":d": deployment,
            ":t": tenantId,
            ":ready": "ready" satisfies FineTunedModelStatus,
            ":full": "full",
            ":deploying": "deploying" satisfies DeploymentStatus,
            ":deployed": "deployed" satisfies DeploymentStatus,
          },
        }),
      );
      return { outcome: "started" };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const current = await this.getModel(modelCode);
      if (current?.tenantId === tenantId && isLive(current.deployment)) {
        return { outcome: "live" };
      }
      return { outcome: "not_deployable" };
    }
  }

  async updateDeployment(
    modelCode: string,
    deploymentId: string,
    from: readonly DeploymentStatus[],
    change: DeploymentChange,
  ): Promise<boolean> {
    const set = ["deployment.#dstatus = :status"];
    const remove: string[] = [];
    const values: Record<string, unknown> = { ":status": change.status, ":id": deploymentId };
    if (change.deployedAt !== undefined) {
      set.push("deployment.deployedAt = :deployedAt");
      values[":deployedAt"] = change.deployedAt;
    }
    for (const field of ["endpoint", "reason"] as const) {
      const value = change[field];
      if (value === null) remove.push(`deployment.${field}`);
      else if (value !== undefined) {
        set.push(`deployment.${field} = :${field}`);
        values[`:${field}`] = value;
      }
    }
    const allowed = from.map((status, i) => {
      values[`:from${i}`] = status;
      return `:from${i}`;
    });
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.modelsTable,
          Key: { modelCode },
          UpdateExpression: `SET ${set.join(", ")}${remove.length ? ` REMOVE ${remove.join(", ")}` : ""}`,
          ConditionExpression: `deployment.id = :id AND deployment.#dstatus IN (${allowed.join(", ")})`,
          ExpressionAttributeNames: { "#dstatus": "status" },
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async liveDeployments(tenantId: string): Promise<number> {
    let count = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.modelsTable,
          IndexName: "byTenant",
          KeyConditionExpression: "tenantId = :t",
          FilterExpression: "deployment.#dstatus IN (:deploying, :deployed)",
          ExpressionAttributeNames: { "#dstatus": "status" },
          ExpressionAttributeValues: { ":t": tenantId, ":deploying": "deploying", ":deployed": "deployed" },
          Select: "COUNT",
          ExclusiveStartKey: start,
        }),
      );
      count += page.Count ?? 0;
      start = page.LastEvaluatedKey;
    } while (start);
    return count;
  }
}

/** The deployer's queue on SQS. */
export class SqsDeploymentQueue implements DeploymentQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(message: DeployerMessage, delaySeconds = 0): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.min(900, Math.max(0, Math.round(delaySeconds))),
      }),
    );
  }
}
