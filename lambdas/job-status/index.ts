import { Logger } from "@aws-lambda-powertools/logger";
import type { EventBridgeEvent } from "aws-lambda";
import { documentClient, s3Client } from "../aws/clients.ts";
import { requiredEnv } from "../aws/env.ts";
import { JobsRepository } from "../aws/jobs-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { applyBatchStateChange, type StatusDependencies } from "./apply.ts";

const logger = new Logger({ serviceName: "job-status" });
let deps: StatusDependencies | undefined;

function dependencies(): StatusDependencies {
  deps ??= {
    jobs: new JobsRepository(documentClient(), {
      jobs: requiredEnv("JOBS_TABLE"),
      events: requiredEnv("EVENTS_TABLE"),
      models: requiredEnv("MODELS_TABLE"),
    }),
    artifacts: new ObjectStore(s3Client(), requiredEnv("ARTIFACTS_BUCKET")),
  };
  return deps;
}

/**
 * EventBridge "Batch Job State Change" (the local runner sends the same events) → job status. A thrown
 * error makes EventBridge retry (then its DLQ); a rejected or stale event is logged and dropped.
 */
export async function handler(event: EventBridgeEvent<"Batch Job State Change", unknown>): Promise<string> {
  const outcome = await applyBatchStateChange(event.detail, dependencies());
  const detail = event.detail as { jobId?: string; status?: string; parameters?: Record<string, string> };
  logger.info("batch state change", {
    batchJobId: detail.jobId,
    batchStatus: detail.status,
    jobId: detail.parameters?.jobId,
    outcome,
  });
  return outcome;
}
