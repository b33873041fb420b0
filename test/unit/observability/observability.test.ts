import { S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SERVICES } from "../../../infra/resources/definitions.ts";
import { batchClient, documentClient, s3Client, sqsClient } from "../../../lambdas/aws/clients.ts";
import { observability, tracer } from "../../../lambdas/aws/observability.ts";

describe("Powertools outside Lambda (tests, the local platform)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("has a Tracer that is off and hands SDK clients back untouched", () => {
    // Prepare: vitest is no Lambda (no AWS_EXECUTION_ENV).
    expect(process.env.AWS_EXECUTION_ENV).toBeUndefined();
    const client = new S3Client({ region: "us-east-1" });
    const middlewares = client.middlewareStack.identify().length;

    // Act
    const captured = tracer().captureAWSv3Client(client);

    // Assess
    expect(tracer().isTracingEnabled()).toBe(false);
    expect(captured).toBe(client);
    expect(client.middlewareStack.identify()).toHaveLength(middlewares);
  });

  it("builds every SDK client once per process, through the Tracer", () => {
    for (const build of [s3Client, sqsClient, documentClient, batchClient]) {
      expect(build()).toBe(build());
    }
  });

  it("gives each service its own logger and metrics, and all of them the one Tracer", () => {
    const chat = observability(SERVICES.chat);
    const validator = observability(SERVICES.validator);
    expect(observability(SERVICES.chat)).toBe(chat);
    expect(chat.tracer).toBe(validator.tracer);
    expect(chat.metrics).not.toBe(validator.metrics);
  });

  it("logs JSON lines under the service's SERVICES name", () => {
    const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    observability(SERVICES.filesApi).logger.info("listed", { files: 2 });
    const [[line]] = write.mock.calls as unknown as [[string]];
    expect(JSON.parse(line)).toMatchObject({
      level: "INFO",
      service: "files-api",
      message: "listed",
      files: 2,
    });
  });
});
