import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { GetCommand, PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { ObjectStore } from "../../lambdas/aws/object-store.ts";
import { uploadHeaders } from "../../lambdas/core/files/file-record.ts";
import type { BootstrappedResources } from "../../local/bootstrap.ts";
import { freshResources, localClients } from "./aws.ts";

describe("LocalStack services the platform relies on", () => {
  const { s3, sqs, documents } = localClients();
  let resources: BootstrappedResources;

  beforeAll(async () => {
    resources = await freshResources("svc");
  });

  describe("S3", () => {
    it("stores and returns an object byte for byte", async () => {
      const body = '{"messages":[{"role":"user","content":"你好"}]}\n';
      const Bucket = resources.buckets.datasets;
      await s3.send(new PutObjectCommand({ Bucket, Key: "tenants/t1/files/a.jsonl", Body: body }));
      const got = await s3.send(new GetObjectCommand({ Bucket, Key: "tenants/t1/files/a.jsonl" }));
      expect(await got.Body?.transformToString("utf-8")).toBe(body);
    });

    it("accepts one PUT to a presigned URL with the pinned size and type and rejects any other", async () => {
      const Bucket = resources.buckets.datasets;
      const Key = "tenants/t1/files/presigned.jsonl";
      const headers = uploadHeaders({ contentType: "application/jsonl", bytes: 11 });
      const url = await new ObjectStore(s3, Bucket).presignPut(Key, headers, 300);
      const sent = { "content-type": "application/jsonl", "if-none-match": "*" };
      const tooLong = await fetch(url, { method: "PUT", body: "hello world!", headers: sent });
      expect(tooLong.status).toBe(403);
      const ok = await fetch(url, { method: "PUT", body: "hello world", headers: sent });
      expect(ok.status).toBe(200);
      const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
      expect(await got.Body?.transformToString()).toBe("hello world");

      const tampered = await fetch(url, {
        method: "PUT",
        body: "hello world",
        headers: { ...sent, "content-type": "text/html" },
      });
      expect(tampered.status).toBe(403);
      const again = await fetch(url, { method: "PUT", body: "HELLO WORLD", headers: sent });
      expect(again.status).toBe(412);
    });
  });

  describe("SQS", () => {
    it("delivers a sent message", async () => {
      const QueueUrl = resources.queueUrls.training;
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ jobId: "ftjob-1" }) }));
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2 }));
      expect(received.Messages?.map((m) => JSON.parse(m.Body ?? "{}"))).toEqual([{ jobId: "ftjob-1" }]);
    });

    it("moves a message to the DLQ after maxReceiveCount failed receives", async () => {
      const QueueUrl = resources.queueUrls.validation;
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "poison" }));
      let receives = 0;
      for (let attempt = 0; attempt < 30; attempt++) {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }),
        );
        if (!Messages?.length) break;
        for (const message of Messages) {
          // S3 puts a test event in a queue it notifies; only the poison message matters here.
          if (message.Body !== "poison") {
            await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle }));
            continue;
          }
          receives++;
          // A consumer that fails makes the message visible again at once, as a failed batch item does.
          await sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl,
              ReceiptHandle: message.ReceiptHandle,
              VisibilityTimeout: 0,
            }),
          );
        }
      }
      expect(receives).toBe(5);
      const dead = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: resources.dlqUrls.validation, WaitTimeSeconds: 2 }),
      );
      expect(dead.Messages?.map((m) => m.Body)).toEqual(["poison"]);
    });
  });

  describe("DynamoDB", () => {
    it("refuses a conditional put over an existing item and keeps the stored one", async () => {
      const TableName = resources.tables.models;
      const put = (tenantId: string) =>
        documents.send(
          new PutCommand({
            TableName,
            Item: { modelCode: "my-model", tenantId, createdAt: 1 },
            ConditionExpression: "attribute_not_exists(modelCode)",
          }),
        );
      await put("tenant-a");
      await expect(put("tenant-b")).rejects.toBeInstanceOf(ConditionalCheckFailedException);
      const { Item } = await documents.send(new GetCommand({ TableName, Key: { modelCode: "my-model" } }));
      expect(Item?.tenantId).toBe("tenant-a");
    });

    it("writes nothing of a transaction when one of its conditions fails", async () => {
      const models = resources.tables.models;
      const jobs = resources.tables.jobs;
      await documents.send(
        new PutCommand({ TableName: models, Item: { modelCode: "taken", tenantId: "a", createdAt: 1 } }),
      );
      const attempt = documents.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: jobs, Item: { tenantId: "b", jobId: "ftjob-x", status: "queued" } } },
            {
              Put: {
                TableName: models,
                Item: { modelCode: "taken", tenantId: "b", createdAt: 2 },
                ConditionExpression: "attribute_not_exists(modelCode)",
              },
            },
          ],
        }),
      );
      await expect(attempt).rejects.toBeInstanceOf(TransactionCanceledException);
      const job = await documents.send(
        new GetCommand({ TableName: jobs, Key: { tenantId: "b", jobId: "ftjob-x" } }),
      );
      expect(job.Item).toBeUndefined();
      const model = await documents.send(new GetCommand({ TableName: models, Key: { modelCode: "taken" } }));
      expect(model.Item?.tenantId).toBe("a");
    });
  });
});
