import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { ECSClient } from "@aws-sdk/client-ecs";
import { ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { z } from "zod";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { EcsDeploymentRuntime, ecsRuntimeFromEnv } from "../aws/ecs-deployment-runtime.ts";
import { observability, tracer } from "../aws/observability.ts";
import type { DeployerMessage } from "../core/deployments/deployment.ts";
import { type DeployerDependencies, deployerDependencies, handleDeployerMessage } from "./deploy.ts";

const { logger } = observability(SERVICES.deployer);

/** A deployer queue message (the jobs API and the deployer itself send them). */
export const deployerMessageSchema = z.object({
  action: z.enum(["deploy", "check", "release"]),
  modelCode: z.string().min(1),
  deploymentId: z.string().min(1),
}) satisfies z.ZodType<DeployerMessage>;

/** An SQS handler over the given dependencies, reporting partial batch failures. */
export function deployerHandler(deps: () => DeployerDependencies) {
  const processor = new BatchProcessor(EventType.SQS);
  let resolved: DeployerDependencies | undefined;
  async function recordHandler(record: SQSRecord): Promise<void> {
    resolved ??= deps();
    let body: unknown;
    try {
      body = JSON.parse(record.body);
    } catch {
      body = undefined;
    }
    const parsed = deployerMessageSchema.safeParse(body);
    if (!parsed.success) {
      // Redelivery would not make it valid: drop it (logged), rather than poison the queue.
      logger.error("malformed deployer message dropped", { messageId: record.messageId, body: record.body });
      return;
    }
    try {
      await handleDeployerMessage(parsed.data, resolved);
    } catch (error) {
      // Only this message is redelivered (after the visibility timeout); the batch's others are done.
      logger.warn("deployer message failed; it will be redelivered", {
        ...parsed.data,
        error: error as Error,
      });
      throw error;
    }
    logger.info("deployer message handled", { messageId: record.messageId, ...parsed.data });
  }
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    processPartialResponse(event, recordHandler, processor, { context });
}

/** The ECS runtime over module-scope clients (captured by the Tracer, like lambdas/aws/clients.ts). */
function ecsRuntime(): EcsDeploymentRuntime {
  return new EcsDeploymentRuntime(
    tracer().captureAWSv3Client(new ECSClient({})),
    tracer().captureAWSv3Client(new ServiceDiscoveryClient({})),
    ecsRuntimeFromEnv(),
  );
}

/** Deployments queue → model servers on ECS. */
export const handler = deployerHandler(() => deployerDependencies(ecsRuntime()));
