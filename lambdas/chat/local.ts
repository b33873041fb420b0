import { type ChatDependencies, type ChatRequest, type ChatSink, serveChat } from "./service.ts";

/** The path the chat function answers at behind API Gateway, and the local gateway's prefix for it. */
export const CHAT_COMPLETIONS_PATH = "/v4/chat/completions";

/**
 * The chat function as a streaming route of the local gateway (local/platform/gateway.ts): the gateway
 * runs the TOKEN authorizer and hands over the tenant; serveChat writes straight to the socket.
 *
 *   createGateway(authorizer.handler, [..., createChatService(chatDependenciesFromEnv(findModel))])
 */
export function createChatService(deps: ChatDependencies): {
  readonly prefix: string;
  readonly stream: (request: ChatRequest, sink: ChatSink) => Promise<void>;
} {
  return { prefix: CHAT_COMPLETIONS_PATH, stream: (request, sink) => serveChat(request, sink, deps) };
}
