import type { EventBridgeEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, s3Client } from "../aws/clients.ts";
import { bucketName, jobTables, tableName } from "../aws/env.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { JobsRepository } from "../aws/jobs-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { observability, recordJobOutcome } from "../aws/observability.ts";
import { parseBatchStateChange } from "../core/jobs/batch-event.ts";
import { applyBatchStateChange, type StatusDependencies } from "./apply.ts";

const { logger, metrics } = observability(SERVICES.jobStatus);
let deps: StatusDependencies | undefined;

function dependencies(): StatusDependencies {
  deps ??= {
    jobs: new JobsRepository(documentClient(), jobTables()),
    artifacts: new ObjectStore(s3Client(), bucketName("artifacts")),
    resultFiles: {
      datasets: new ObjectStore(s3Client(), bucketName("datasets")),
      files: new FilesRepository(documentClient(), tableName("files")),
    },
    recordOutcome: (sample) => recordJobOutcome(metrics, sample),
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
  const change = parseBatchStateChange(event.detail);
  logger.info("batch state change", {
    batchJobId: detail.jobId,
    batchStatus: detail.status,
    jobId: detail.parameters?.jobId,
    outcome,
    // Batch's own reason stays here, in the operator's log, under the job id the tenant's message cites.
    ...(change?.reason ? { reason: change.reason } : {}),
    ...(change?.exitCode !== undefined ? { exitCode: change.exitCode } : {}),
  });
  return outcome;
}
