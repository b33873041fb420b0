/**
 * Benchmark of the chat relay's added latency: time to first byte and per-chunk delivery delay of a
 * streamed chat completion (a) read directly from an OpenAI-compatible upstream and (b) read through the
 * local chat path (gateway streaming route → TOKEN authorizer stub → serveChat → relay, in a process of
 * its own: bench/chat/relay-server.ts), in one run.
 *
 *   npm run bench:chat
 *   CHUNKS=200 INTERVAL_MS=10 REPS=7 BOUND_MS=5 npm run bench:chat
 *
 * The upstream runs in a child process (its timers are not delayed by the relay's work) and stamps each
 * chunk with its send time (`performance.timeOrigin + performance.now()`); a chunk's delivery delay is
 * arrival minus that stamp. The relay's added delay per chunk is its delay through the relay minus the
 * same chunk index's delay in the paired direct run, which cancels any clock offset between the
 * processes. A chunk "held back" is one whose added delay exceeds BOUND_MS (less than the interval, so a
 * chunk kept until the next one arrives always counts). Numbers are printed, never asserted.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveChat } from "../../lambdas/chat/service.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { TokenBucketLimiter } from "../../lambdas/core/chat/rate-limit.ts";
import { SseParser } from "../../lambdas/core/chat/sse.ts";

const here = dirname(fileURLToPath(import.meta.url));
const CHUNKS = Number(process.env.CHUNKS ?? 200);
const INTERVAL_MS = Number(process.env.INTERVAL_MS ?? 10);
const REPS = Number(process.env.REPS ?? 7);
const BOUND_MS = Number(process.env.BOUND_MS ?? 5);

// The upstream: plain Node, no dependencies, so `node -e` runs it.
const UPSTREAM = String.raw`
const http = require("node:http");
const now = () => performance.timeOrigin + performance.now();
const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));
const server = http.createServer(async (req, res) => {
  for await (const _ of req);
  const chunks = Number(process.env.CHUNKS), interval = Number(process.env.INTERVAL_MS);
  res.socket.setNoDelay(true);
  res.writeHead(200, { "content-type": "text/event-stream" });
  const base = { id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1700000000, model: "tiny-chat" };
  const start = performance.now();
  for (let i = 0; i < chunks; i++) {
    await sleepUntil(start + i * interval);
    if (res.destroyed) return;
    const chunk = { ...base, choices: [{ index: 0, delta: { content: "tok" + i + " " }, finish_reason: null }], i, sent_at: now() };
    res.write("data: " + JSON.stringify(chunk) + "\n\n");
  }
  res.write("data: " + JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) + "\n\n");
  res.end("data: [DONE]\n\n");
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

interface Run {
  readonly ttfbMs: number;
  /** Per chunk index: arrival minus send stamp. */
  readonly delays: number[];
  /** Per chunk index: arrival and send stamps (epoch ms, fractional). */
  readonly arrivals: number[];
  readonly sent: number[];
  readonly models: Set<string>;
  readonly done: boolean;
}

async function measure(url: string, headers: Record<string, string>, model: string): Promise<Run> {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "bench" }], stream: true }),
  });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  const reader = response.body.getReader();
  const parser = new SseParser();
  const delays: number[] = [];
  const arrivals: number[] = [];
  const sent: number[] = [];
  const models = new Set<string>();
  let ttfbMs = Number.NaN;
  let done = false;
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    const arrived = performance.timeOrigin + performance.now();
    if (Number.isNaN(ttfbMs)) ttfbMs = performance.now() - started;
    for (const event of parser.push(value)) {
      if (event.data === "[DONE]") {
        done = true;
        continue;
      }
      const chunk = JSON.parse(event.data) as { i?: number; sent_at?: number; model: string };
      models.add(chunk.model);
      if (chunk.i !== undefined && chunk.sent_at !== undefined) {
        delays[chunk.i] = arrived - chunk.sent_at;
        arrivals[chunk.i] = arrived;
        sent[chunk.i] = chunk.sent_at;
      }
    }
  }
  return { ttfbMs, delays, arrivals, sent, models, done };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const ms = (value: number) => value.toFixed(2).padStart(8);

async function main(): Promise<void> {
  const child = spawn(process.execPath, ["-e", UPSTREAM], {
    env: { ...process.env, CHUNKS: String(CHUNKS), INTERVAL_MS: String(INTERVAL_MS) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout, "data")) as [Buffer];
  const upstream = `http://127.0.0.1:${line.toString().trim()}/v1`;

  // The chat path in a process of its own, as a Lambda would be: the client's work here does not
  // queue in front of the relay's.
  const relay = spawn(process.execPath, ["--import", "tsx", join(here, "relay-server.ts")], {
    env: { ...process.env, UPSTREAM_URL: upstream },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [relayLine] = (await once(relay.stdout, "data")) as [Buffer];
  const relayUrl = `http://127.0.0.1:${relayLine.toString().trim()}/v4/chat/completions`;

  console.log(
    `chat relay benchmark: ${CHUNKS} chunks every ${INTERVAL_MS} ms, ${REPS} repetitions (+1 warm-up) per path, node ${process.version}, ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}`,
  );
  const direct: Run[] = [];
  const relayed: Run[] = [];
  for (let rep = 0; rep <= REPS; rep++) {
    const d = await measure(`${upstream}/chat/completions`, {}, "tiny-chat");
    const r = await measure(relayUrl, { authorization: "Bearer bench" }, "bench-model");
    if (rep === 0) continue; // warm-up: connection pools, JIT
    direct.push(d);
    relayed.push(r);
  }

  const added: number[] = [];
  let held = 0;
  let missing = 0;
  for (const [rep, r] of relayed.entries()) {
    const d = direct[rep]!;
    for (let i = 0; i < CHUNKS; i++) {
      const a = r.delays[i];
      const b = d.delays[i];
      if (a === undefined || b === undefined) {
        missing += 1;
        continue;
      }
      added.push(a - b);
      if (a - b > BOUND_MS) held += 1;
    }
  }
  // Held until a later chunk: chunk i arrived only after chunk i+1 had been sent. Counted for the direct
  // path too, where it can only be scheduling noise of this machine: the baseline to read the relay's against.
  const heldUntilNext = (runs: Run[]) =>
    runs.reduce((sum, run) => {
      let count = 0;
      for (let i = 0; i + 1 < CHUNKS; i++) {
        const arrived = run.arrivals[i];
        const next = run.sent[i + 1];
        if (arrived !== undefined && next !== undefined && arrived > next) count += 1;
      }
      return sum + count;
    }, 0);
  const rows: [string, number[], number[]][] = [
    ["direct", direct.map((x) => x.ttfbMs), direct.flatMap((x) => x.delays)],
    ["relay", relayed.map((x) => x.ttfbMs), relayed.flatMap((x) => x.delays)],
  ];
  console.log("\npath     | TTFB p50 | TTFB p99 | chunk delay p50 | chunk delay p99 | chunk delay max");
  console.log("---------|----------|----------|-----------------|-----------------|----------------");
  for (const [name, ttfb, delays] of rows) {
    console.log(
      `${name.padEnd(8)} | ${ms(quantile(ttfb, 0.5))} | ${ms(quantile(ttfb, 0.99))} | ${ms(quantile(delays, 0.5)).padStart(15)} | ${ms(quantile(delays, 0.99)).padStart(15)} | ${ms(quantile(delays, 1)).padStart(14)}`,
    );
  }
  const addedTtfb = quantile(rows[1]![1], 0.5) - quantile(rows[0]![1], 0.5);
  const addedP50 = quantile(added, 0.5);
  const addedP99 = quantile(added, 0.99);
  console.log("\nadded by the relay (ms)");
  console.log(
    `  TTFB, median:                 ${ms(addedTtfb)}   goal ≤ 5    ${addedTtfb <= 5 ? "ok" : "MISSED"}`,
  );
  console.log(`  per-chunk delay, p50:         ${ms(addedP50)}`);
  console.log(
    `  per-chunk delay, p99:         ${ms(addedP99)}   goal ≤ 2    ${addedP99 <= 2 ? "ok" : "MISSED"}`,
  );
  console.log(`  per-chunk delay, max:         ${ms(quantile(added, 1))}`);
  console.log(
    `  chunks held back > ${BOUND_MS} ms:     ${String(held).padStart(8)}   of ${added.length} (missing: ${missing})`,
  );
  console.log(
    `  chunks arriving after the next was sent: relay ${heldUntilNext(relayed)}, direct ${heldUntilNext(direct)} (noise baseline), of ${relayed.length * (CHUNKS - 1)}`,
  );
  const models = new Set(relayed.flatMap((x) => [...x.models]));
  console.log(
    `  relayed model names: ${[...models].join(", ")}; every stream ended with [DONE]: ${relayed.every((x) => x.done)}`,
  );

  console.log(
    `  load average at the end: ${loadavg()[0]!.toFixed(2)} (numbers above ~1 per CPU are noise-bound)`,
  );
  relay.kill();
  child.kill();
}

/**
 * The relay's own CPU cost, without sockets: serveChat against an in-memory upstream (a fetch that
 * returns a ready stream) and a sink that discards. Medians over many runs are robust to a busy
 * machine, unlike the wall-clock figures above.
 */
async function cpuCost(): Promise<void> {
  const encoder = new TextEncoder();
  const base = {
    id: "chatcmpl-bench",
    object: "chat.completion.chunk",
    created: 1700000000,
    model: "tiny-chat",
  };
  const events = (n: number) => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const chunk = { ...base, choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }] };
      out.push(encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`));
    }
    out.push(encoder.encode("data: [DONE]\n\n"));
    return out;
  };
  const deps = (n: number) => {
    const body = events(n);
    return {
      catalog: DEFAULT_CATALOG,
      findModel: async () => undefined,
      endpoints: new Map([["*", "http://upstream.invalid/v1"]]),
      limiter: new TokenBucketLimiter(0),
      fetch: (async () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              for (const part of body) controller.enqueue(part);
              controller.close();
            },
          }),
          { status: 200, headers: { "content-type": "text/event-stream" } },
        )) as typeof fetch,
    };
  };
  const request = {
    tenantId: "tn_bench",
    requestId: "req",
    method: "POST",
    path: "/v4/chat/completions",
    headers: {},
    body: Buffer.from(
      JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content: "bench" }], stream: true }),
    ),
  };
  const time = async (n: number, runs: number) => {
    const d = deps(n);
    const samples: number[] = [];
    for (let r = 0; r < runs; r++) {
      const sink = { signal: new AbortController().signal, start() {}, write() {}, end() {} };
      const t = performance.now();
      await serveChat(request, sink, d);
      samples.push(performance.now() - t);
    }
    return quantile(samples.slice(Math.floor(runs / 5)), 0.5);
  };
  const setup = await time(0, 500);
  const full = await time(CHUNKS, 200);
  console.log("\nrelay CPU cost, in memory (median; no sockets)");
  console.log(
    `  per request (validate, resolve, start, [DONE]): ${(setup * 1000).toFixed(0).padStart(6)} µs`,
  );
  console.log(
    `  per chunk (parse SSE, rewrite model, frame):    ${(((full - setup) / CHUNKS) * 1000).toFixed(1).padStart(6)} µs`,
  );
}

await main();
await cpuCost();
