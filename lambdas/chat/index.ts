import { Logger } from "@aws-lambda-powertools/logger";
import { ApiKeysRepository } from "../aws/api-keys-repository.ts";
import { documentClient } from "../aws/clients.ts";
import { requiredEnv } from "../aws/env.ts";
import { getModelRecord } from "../aws/model-lookup.ts";
import { catalogGuard } from "../core/catalog/code-conflicts.ts";
import { createChatLambdaHandler } from "./lambda.ts";
import { type ChatDependencies, chatDependenciesFromEnv } from "./service.ts";

const logger = new Logger({ serviceName: "chat" });
const keys = new ApiKeysRepository(documentClient(), requiredEnv("API_KEYS_TABLE"));
const modelsTable = requiredEnv("MODELS_TABLE");

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
        });
        const exists = async (code: string) => (await findModel(code)) !== undefined;
        chat = { ...deps, ready: catalogGuard(deps.catalog, exists, logError) };
      }
      return chat;
    },
  }),
);
