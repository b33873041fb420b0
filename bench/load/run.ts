/**
 * Load on a local platform over loopback (issue #19): bounded concurrency, then per kind the p50/p99
 * latency, the HTTP 5xx count and the lost items (an upload never processed, a job never terminal).
 *
 *   npm run bench:load
 *   UPLOADS=200 JOBS=50 REAL_JOBS=10 CHATS=100 CONCURRENCY=16 npm run bench:load
 *
 * It starts its own LocalStack (the harness; AWS_ENDPOINT_URL reuses one), the platform in this process
 * with the stand-in trainer (test/integration/fixtures/stand-in-trainer.ts) and, in a child process, a
 * fake OpenAI-compatible upstream (as bench/chat/run.ts) that the platform's chat relays to. Uploads are
 * `POST /v4/files` of a small valid JSONL, timed until the file is `processed`; jobs are `POST
 * /v4/fine_tuning/jobs` (JOBS - REAL_JOBS dry runs, REAL_JOBS real ones, timed until terminal); chats are
 * CHATS streamed completions at once, timed to the end of the stream. Goal: zero 5xx and zero lost.
 * Never run by the tests.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { physicalName } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { documentClient } from "../../lambdas/aws/clients.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { ensureLocalStack } from "../../local/localstack/harness.ts";
import { startPlatform } from "../../local/platform/platform.ts";

const UPLOADS = Number(process.env.UPLOADS ?? 200);
const JOBS = Number(process.env.JOBS ?? 50);
const REAL_JOBS = Number(process.env.REAL_JOBS ?? 10);
const CHATS = Number(process.env.CHATS ?? 100);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 120_000);
const STAND_IN = fileURLToPath(
  new URL("../../test/integration/fixtures/stand-in-trainer.ts", import.meta.url),
);
const DATASET = readFileSync(new URL("../../test/fixtures/datasets/valid-messages.jsonl", import.meta.url));

// The upstream: 20 chunks 5 ms apart, then the usage chunk the relay asks for.
const UPSTREAM = String.raw`
const http = require("node:http");
const server = http.createServer(async (req, res) => {
  let body = "";
  for await (const piece of req) body += piece;
  const request = JSON.parse(body);
  res.writeHead(200, { "content-type": "text/event-stream" });
  const base = { id: "chatcmpl-load", object: "chat.completion.chunk", created: 1700000000, model: request.model };
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 5));
    res.write("data: " + JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: "tok" + i + " " }, finish_reason: null }] }) + "\n\n");
  }
  res.write("data: " + JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) + "\n\n");
  if (request.stream_options?.include_usage) res.write("data: " + JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 20, total_tokens: 25 } }) + "\n\n");
  res.end("data: [DONE]\n\n");
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

type Kind = "upload" | "job (dry run)" | "job (real)" | "chat (streamed)";
interface Outcome {
  latencies: number[];
  statuses: Map<number, number>;
  fiveXx: number;
  lost: number;
  errors: string[];
}
const results = new Map<Kind, Outcome>();
const outcome = (kind: Kind) => {
  let value = results.get(kind);
  if (!value) {
    value = { latencies: [], statuses: new Map(), fiveXx: 0, lost: 0, errors: [] };
    results.set(kind, value);
  }
  return value;
};
const note = (kind: Kind, status: number) => {
  const o = outcome(kind);
  o.statuses.set(status, (o.statuses.get(status) ?? 0) + 1);
  if (status >= 500) o.fiveXx++;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pool<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function main() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "test";
  process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  // The handlers' per-request INFO lines would bury the table (LOG_LEVEL=INFO brings them back).
  process.env.POWERTOOLS_LOG_LEVEL ??= process.env.LOG_LEVEL ?? "WARN";
  const started = performance.now();
  const localstack = await ensureLocalStack({ port: Number(process.env.LOCALSTACK_PORT ?? 0) });
  process.env.AWS_ENDPOINT_URL = localstack.endpoint;
  const upstreamProcess = spawn(process.execPath, ["-e", UPSTREAM], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(upstreamProcess.stdout, "data")) as [Buffer];
  const upstream = `http://127.0.0.1:${line.toString().trim()}/v1`;
  const workDir = mkdtempSync(join(tmpdir(), "ft-load-"));
  const prefix = `load-${Date.now().toString(36)}`;
  const platform = await startPlatform({
    prefix,
    port: 0,
    trainerCommand: [process.execPath, "--import", "tsx", STAND_IN],
    workDir,
    inferenceUrl: upstream,
    trainingConcurrency: 2,
  });
  const admin = new TenantAdmin(new ApiKeysRepository(documentClient(), physicalName(prefix, "api-keys")));
  const { apiKey } = await admin.createTenant("load");
  const auth = { authorization: `Bearer ${apiKey}` };
  const base = platform.baseUrl;
  console.log(
    `platform ${base}, LocalStack ${localstack.endpoint}, upstream ${upstream} (ready in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );

  try {
    // Uploads: POST, then poll until processed (the poll is part of the latency).
    const processedFiles: string[] = [];
    const t0 = performance.now();
    await pool([...Array(UPLOADS).keys()], CONCURRENCY, async (i) => {
      const o = outcome("upload");
      const begin = performance.now();
      try {
        const form = new FormData();
        form.set("purpose", "fine-tune");
        form.set("file", new Blob([DATASET], { type: "application/jsonl" }), `load-${i}.jsonl`);
        const created = await fetch(`${base}/files`, { method: "POST", body: form, headers: auth });
        note("upload", created.status);
        const body = (await created.json()) as { id?: string };
        if (created.status !== 200 || !body.id) return void o.errors.push(`POST ${created.status}`);
        const deadline = Date.now() + SETTLE_MS;
        while (Date.now() < deadline) {
          const got = await fetch(`${base}/files/${body.id}`, { headers: auth });
          if (got.status >= 500) note("upload", got.status);
          const file = (await got.json()) as { status?: string };
          if (file.status === "processed") {
            o.latencies.push(performance.now() - begin);
            processedFiles.push(body.id);
            return;
          }
          if (file.status === "error") return void o.errors.push(`${body.id} error`);
          await sleep(100);
        }
        o.lost++;
      } catch (error) {
        o.errors.push(String(error));
        o.lost++;
      }
    });
    console.log(`uploads done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Jobs: dry runs answer at once; real ones are timed until terminal.
    const t1 = performance.now();
    const trainingFile = processedFiles[0];
    await pool([...Array(JOBS).keys()], CONCURRENCY, async (i) => {
      const dry = i >= REAL_JOBS;
      const kind: Kind = dry ? "job (dry run)" : "job (real)";
      const o = outcome(kind);
      const begin = performance.now();
      try {
        const created = await fetch(`${base}/fine_tuning/jobs`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({
            model: "tiny-chat",
            training_file: processedFiles[i % processedFiles.length] ?? trainingFile,
            method: { type: "lora", hyperparameters: { n_epochs: 1 } },
            seed: 7,
            ...(dry ? { dry_run: true } : {}),
          }),
        });
        note(kind, created.status);
        const body = (await created.json()) as { id?: string };
        if (created.status !== 200)
          return void o.errors.push(`POST ${created.status} ${JSON.stringify(body).slice(0, 200)}`);
        if (dry) return void o.latencies.push(performance.now() - begin);
        const deadline = Date.now() + SETTLE_MS;
        while (Date.now() < deadline) {
          const got = await fetch(`${base}/fine_tuning/jobs/${body.id}`, { headers: auth });
          if (got.status >= 500) note(kind, got.status);
          const job = (await got.json()) as { status?: string };
          if (["succeeded", "failed", "cancelled"].includes(job.status ?? "")) {
            o.latencies.push(performance.now() - begin);
            if (job.status !== "succeeded") o.errors.push(`${body.id} ${job.status}`);
            return;
          }
          await sleep(250);
        }
        o.lost++;
      } catch (error) {
        o.errors.push(String(error));
        o.lost++;
      }
    });
    console.log(`jobs done in ${((performance.now() - t1) / 1000).toFixed(1)} s`);

    // Chats: all at once, each read to the end of its stream.
    const t2 = performance.now();
    await pool([...Array(CHATS).keys()], CHATS, async () => {
      const o = outcome("chat (streamed)");
      const begin = performance.now();
      try {
        const response = await fetch(`${base}/chat/completions`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({
            model: "tiny-chat",
            messages: [{ role: "user", content: "load" }],
            stream: true,
          }),
        });
        note("chat (streamed)", response.status);
        const text = await response.text();
        if (response.status !== 200) return void o.errors.push(`${response.status} ${text.slice(0, 200)}`);
        if (!text.includes("data: [DONE]")) return void o.errors.push("stream without [DONE]");
        o.latencies.push(performance.now() - begin);
      } catch (error) {
        o.errors.push(String(error));
      }
    });
    console.log(`chats done in ${((performance.now() - t2) / 1000).toFixed(1)} s`);
  } finally {
    await platform.stop();
    upstreamProcess.kill();
    await localstack.stop();
    rmSync(workDir, { recursive: true, force: true });
  }

  const rows = [...results.entries()].map(([kind, o]) => ({
    kind,
    n: o.latencies.length,
    p50: quantile(o.latencies, 0.5),
    p99: quantile(o.latencies, 0.99),
    statuses: [...o.statuses.entries()]
      .sort()
      .map(([s, c]) => `${s}×${c}`)
      .join(" "),
    fiveXx: o.fiveXx,
    lost: o.lost,
    errors: o.errors,
  }));
  console.log(
    `\n${"kind".padEnd(16)} ${"done".padStart(5)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"5xx".padStart(4)} ${"lost".padStart(5)}  statuses`,
  );
  for (const r of rows) {
    console.log(
      `${r.kind.padEnd(16)} ${String(r.n).padStart(5)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(9)} ${String(r.fiveXx).padStart(4)} ${String(r.lost).padStart(5)}  ${r.statuses}`,
    );
    for (const e of [...new Set(r.errors)].slice(0, 5)) console.log(`    ${e}`);
  }
  const fiveXx = rows.reduce((n, r) => n + r.fiveXx, 0);
  const lost = rows.reduce((n, r) => n + r.lost, 0);
  console.log(
    `\n5xx: ${fiveXx}, lost: ${lost} (goal: 0 and 0) ${fiveXx === 0 && lost === 0 ? "ok" : "MISSED"}`,
  );
  process.exitCode = fiveXx === 0 && lost === 0 ? 0 : 1;
}

await main();
