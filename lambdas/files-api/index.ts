import type { APIGatewayProxyEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, s3Client } from "../aws/clients.ts";
import { bucketName, tableName } from "../aws/env.ts";
import { unfinishedJobsUsingFile } from "../aws/file-usage.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { observability } from "../aws/observability.ts";
import { handleApiEvent } from "../core/http/api-gateway.ts";
import type { HttpResponse } from "../core/http/response.ts";
import { Router } from "../core/http/router.ts";
import { filesRoutes } from "./routes.ts";

const { logger } = observability(SERVICES.filesApi);
const jobsTable = tableName("jobs");
const router = new Router(
  filesRoutes({
    files: new FilesRepository(documentClient(), tableName("files")),
    datasets: new ObjectStore(s3Client(), bucketName("datasets")),
    unfinishedJobsUsing: (tenantId, fileId) =>
      unfinishedJobsUsingFile(documentClient(), jobsTable, tenantId, fileId),
  }),
);

/** `/v4/files…` behind the API key authorizer. */
export async function handler(event: APIGatewayProxyEvent): Promise<HttpResponse> {
  return handleApiEvent(router, event, (message, details) => logger.error(message, details));
}
