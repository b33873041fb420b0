import { SERVICES } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../aws/api-keys-repository.ts";
import { tokenRateFromEnv } from "../aws/chat-rate-repository.ts";
import { documentClient } from "../aws/clients.ts";
import { tableName } from "../aws/env.ts";
import { getModelRecord } from "../aws/model-lookup.ts";
import { observability, recordChat } from "../aws/observability.ts";
import { UsageRepository } from "../aws/usage-repository.ts";
import { catalogGuard } from "../core/catalog/code-conflicts.ts";
import { createChatLambdaHandler } from "./lambda.ts";
import { type ChatDependencies, chatDependenciesFromEnv } from "./service.ts";

const { logger, metrics } = observability(SERVICES.chat);
const keys = new ApiKeysRepository(documentClient(), tableName("api-keys"));
const modelsTable = tableName("models");

const findModel = (modelCode: string) => getModelRecord(documentClient(), modelsTable, modelCode);

let chat: ChatDependencies | undefined;

/**
 * POST /v4/chat/completions, streamed: from a Function URL (InvokeMode RESPONSE_STREAM; the function
 * checks the API key) and from API Gateway REST with response streaming (after the TOKEN authorizer).
 */
export const handler = awslambda.streamifyResponse(
  createChatLambdaHandler({
    keys,
    chat: () => {
      if (!chat) {
        const logError = (message: string, details: Record<string, unknown>) =>
          logger.error(message, details);
        const deps = chatDependenciesFromEnv(findModel, process.env, {
          log: (entry) => logger.info("chat", { ...entry }),
          logError,
          recordChat: (sample) => recordChat(metrics, sample),
          usage: new UsageRepository(documentClient(), tableName("usage")),
          tokenRate: tokenRateFromEnv(documentClient()),
        });
        const exists = async (code: string) => (await findModel(code)) !== undefined;
        chat = { ...deps, ready: catalogGuard(deps.catalog, exists, logError) };
      }
      return chat;
    },
  }),
);
