import type { AddressInfo } from "node:net";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { dynamoClient, s3Client, sqsClient } from "../../lambdas/aws/clients.ts";
import { contextLimits } from "../../lambdas/core/catalog/base-models.ts";
import { type BootstrappedResources, bootstrapResources } from "../bootstrap.ts";
import { functionEnvironment } from "./environment.ts";
import { createGateway } from "./gateway.ts";
import { SqsPoller } from "./sqs-poller.ts";

export interface LocalPlatform {
  /** e.g. http://localhost:8787/v4 */
  readonly baseUrl: string;
  readonly resources: BootstrappedResources;
  stop(): Promise<void>;
}

export interface PlatformOptions {
  /** Prefix of the local resources; `ft` for `npm start`, a fresh one per test file. */
  readonly prefix: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly log?: (line: string) => void;
}

/**
 * The whole platform in this process, against the LocalStack at AWS_ENDPOINT_URL: the same resources
 * as the CDK app, the gateway in front of the same handlers, and pollers feeding the SQS consumers.
 * Handlers read their configuration at import, so one platform runs per process.
 */
export async function startPlatform(options: PlatformOptions): Promise<LocalPlatform> {
  const log = options.log ?? (() => {});
  if (!process.env.AWS_ENDPOINT_URL) throw new Error("startPlatform needs AWS_ENDPOINT_URL (a LocalStack)");
  const resources = await bootstrapResources(
    { s3: s3Client(), sqs: sqsClient(), dynamo: dynamoClient() },
    options.prefix,
  );
  Object.assign(process.env, functionEnvironment(resources), {
    CONTEXT_LIMITS: process.env.CONTEXT_LIMITS ?? JSON.stringify(contextLimits()),
  });

  const [authorizer, filesApi, validator] = await Promise.all([
    import("../../lambdas/authorizer/index.ts"),
    import("../../lambdas/files-api/index.ts"),
    import("../../lambdas/validator/index.ts"),
  ]);
  const server = createGateway(authorizer.handler, [{ prefix: "/v4/files", handler: filesApi.handler }]);
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  const validationArn = await queueArn(resources.queueUrls.validation);
  const pollers = [
    new SqsPoller({
      sqs: sqsClient(),
      queueUrl: resources.queueUrls.validation,
      queueArn: validationArn,
      handler: validator.handler,
      log: (line) => log(`validator: ${line}`),
    }),
  ];
  for (const poller of pollers) poller.start();
  log(`gateway on http://localhost:${port}/v4, resources prefixed ${options.prefix}`);

  return {
    baseUrl: `http://localhost:${port}/v4`,
    resources,
    async stop() {
      await Promise.all(pollers.map((p) => p.stop()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function queueArn(url: string): Promise<string> {
  const { Attributes } = await sqsClient().send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  return Attributes!.QueueArn!;
}
