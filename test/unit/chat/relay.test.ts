import { once } from "node:events";
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage } from "node:http";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatSink, relay } from "../../../lambdas/chat/relay.ts";
import { chatDeps, FakeUpstream, startGateway } from "./harness.ts";

/** The relay's connection handling towards the inference server, and the gateway's header timing. */

function memorySink(): ChatSink & { readonly text: () => string } {
  const parts: string[] = [];
  return {
    signal: new AbortController().signal,
    start: () => {},
    write: (chunk) => {
      parts.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    },
    end: () => {},
    text: () => parts.join(""),
  };
}

const chat = (baseUrl: string, stream: boolean) =>
  relay(
    {
      baseUrl,
      body: { model: "tiny-chat", messages: [{ role: "user", content: "Hi" }], stream },
      headers: {},
      stream,
      rewrite: { model: "acme-support-v1", includeUsage: false },
      requestId: "req-1",
    },
    memorySink(),
  );

describe("relay to the inference server", () => {
  const upstream = new FakeUpstream();
  let url: string;
  beforeAll(async () => {
    url = await upstream.start();
  });
  afterAll(() => upstream.stop());

  it("keeps one connection to the inference server for consecutive chats", async () => {
    const before = upstream.connections;
    for (let i = 0; i < 3; i++) {
      expect((await chat(url, true)).outcome).toBe("completed");
      expect((await chat(url, false)).outcome).toBe("completed");
    }
    expect(upstream.connections - before).toBe(1);
  });

  it("retries once on a new connection when a kept-alive one was reset before the request got through", async () => {
    // Answers the first request of each connection and resets the connection at its second, as a
    // server does that closed an idle connection the client still had in its pool.
    let connections = 0;
    const server = createTcpServer((socket: Socket) => {
      connections += 1;
      let requests = 0;
      socket.on("data", (data) => {
        if (!data.includes("\r\n\r\n")) return;
        requests += 1;
        if (requests > 1) {
          socket.resetAndDestroy();
          return;
        }
        const body = JSON.stringify({
          id: "c",
          object: "chat.completion",
          created: 1,
          model: "m",
          choices: [{ index: 0, message: { role: "assistant", content: "Hi!" }, finish_reason: "stop" }],
        });
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: keep-alive\r\n\r\n${body}`,
        );
      });
      socket.on("error", () => {});
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    try {
      expect((await chat(base, false)).outcome).toBe("completed");
      expect((await chat(base, false)).outcome).toBe("completed");
      expect(connections).toBe(2);
    } finally {
      server.close();
    }
  });
});

describe("the gateway's streaming response", () => {
  it("sends the headers at once when the inference server's first chunk is still coming", async () => {
    let headersSeen!: () => void;
    const seen = new Promise<void>((resolve) => {
      headersSeen = resolve;
    });
    let firstChunkSent = false;
    // An inference server that answers its headers at once and its first chunk only once the client
    // has seen the headers (or after 2 s, when the assertion below fails).
    const slow = createHttpServer(async (req, res) => {
      for await (const _ of req);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.flushHeaders();
      await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 2_000))]);
      firstChunkSent = true;
      const chunk = { id: "c", object: "chat.completion.chunk", created: 1, model: "m" };
      res.write(
        `data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta: { content: "Hi" } }] })}\n\n`,
      );
      res.end("data: [DONE]\n\n");
    });
    slow.listen(0, "127.0.0.1");
    await once(slow, "listening");
    const gateway = await startGateway(
      chatDeps(`http://127.0.0.1:${(slow.address() as AddressInfo).port}/v1`),
    );
    try {
      const body = JSON.stringify({
        model: "tiny-chat",
        messages: [{ role: "user", content: "Hi" }],
        stream: true,
      });
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpRequest(`${gateway.baseUrl}/chat/completions`, {
          method: "POST",
          headers: { authorization: "Bearer key-a", "content-type": "application/json" },
        });
        req.on("response", resolve).on("error", reject);
        req.end(body);
      });
      expect(firstChunkSent).toBe(false);
      headersSeen();
      let text = "";
      for await (const piece of res) text += piece;
      expect(res.statusCode).toBe(200);
      expect(text).toContain('"content":"Hi"');
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    } finally {
      await gateway.stop();
      slow.closeAllConnections();
      slow.close();
    }
  });
});
