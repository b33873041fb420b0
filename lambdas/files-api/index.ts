import type { APIGatewayProxyEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, s3Client } from "../aws/clients.ts";
import { bucketName, quotaDefaults, tableName } from "../aws/env.ts";
import { claimFileForDeletion } from "../aws/file-usage.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { observability } from "../aws/observability.ts";
import { fileHoldings, quotasReader, TenantSettingsRepository } from "../aws/tenant-settings-repository.ts";
import { handleApiEvent } from "../core/http/api-gateway.ts";
import type { HttpResponse } from "../core/http/response.ts";
import { Router } from "../core/http/router.ts";
import { filesRoutes } from "./routes.ts";

const { logger } = observability(SERVICES.filesApi);
const tables = { files: tableName("files"), jobs: tableName("jobs") };
const settings = new TenantSettingsRepository(documentClient(), tableName("tenants"));
const router = new Router(
  filesRoutes({
    files: new FilesRepository(documentClient(), tables.files),
    datasets: new ObjectStore(s3Client(), bucketName("datasets")),
    claimForDeletion: (tenantId, fileId) =>
      claimFileForDeletion(documentClient(), tables, tenantId, fileId, Math.floor(Date.now() / 1000)),
    quotas: {
      quotasOf: quotasReader(settings, quotaDefaults()),
      fileHoldings: (tenantId) => fileHoldings(documentClient(), tables.files, tenantId),
    },
  }),
);

/** `/v4/files…` behind the API key authorizer. */
export async function handler(event: APIGatewayProxyEvent): Promise<HttpResponse> {
  return handleApiEvent(router, event, (message, details) => logger.error(message, details));
}
