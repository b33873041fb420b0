import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { physicalName } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { documentClient, s3Client } from "../../lambdas/aws/clients.ts";
import { FilesRepository } from "../../lambdas/aws/files-repository.ts";
import { jobArtifactKeys } from "../../lambdas/core/contract.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { ensureLocalStack, type LocalStackHandle, localStackUsing } from "../../local/localstack/harness.ts";
import { localStateDirs } from "../../local/platform/local-state.ts";
import { uniquePrefix } from "./aws.ts";

const PLATFORM = fileURLToPath(new URL("./fixtures/platform-process.ts", import.meta.url));
const DATASET = readFileSync(new URL("../fixtures/datasets/valid-messages.jsonl", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/**
 * Fault injection on the local platform with its state kept (issue #19): the platform (gateway and SQS
 * pollers) runs as a child process (fixtures/platform-process.ts) and the stand-in trainer runs the jobs,
 * so a SIGKILL hits each for real: the platform process, a trainer mid-run, and LocalStack (its process
 * group and DynamoDB Local's JVM), each restarted on the same state directory. After every restart the
 * invariants hold: every upload is still there, byte for byte, and was validated once (its record's
 * `validatedAt` never changes); every job is terminal or resumes from its checkpoint and succeeds; every
 * trained model's artifacts still read back. The matrix of what was killed and what came of it is printed.
 */
describe("a local platform under SIGKILL", () => {
  const prefix = uniquePrefix("faults");
  const dir = mkdtempSync(join(tmpdir(), "ft-faults-"));
  const state = localStateDirs(dir, prefix);
  const globalEndpoint = process.env.AWS_ENDPOINT_URL;
  /** The platform processes' logs, one after another; kept when a test fails (FT_FAULTS_KEEP_LOG=1: always). */
  const platformLog = join(tmpdir(), `ft-${prefix}-platform.log`);
  let failed = false;
  const matrix: { killed: string; outcome: string }[] = [];
  let localstack: LocalStackHandle | undefined;
  let port = 0;
  let platform: { child: ChildProcess; baseUrl: string } | undefined;
  let key = "";
  let tenantId = "";
  /** Every upload made, with the `validatedAt` its validation recorded. */
  const uploads = new Map<string, number | undefined>();
  /** Every job made, with the status it must end in (a trainer killed mid-run: failed). */
  const jobs = new Map<string, { method: "lora" | "full"; expected: "succeeded" | "failed" }>();

  async function startLocalStack() {
    delete process.env.AWS_ENDPOINT_URL;
    localstack = await ensureLocalStack({
      port,
      stateDir: state.localstack,
      handleSignals: false,
      log: () => {},
    });
    port = Number(new URL(localstack.endpoint).port);
    process.env.AWS_ENDPOINT_URL = localstack.endpoint;
  }

  async function startPlatformProcess() {
    const child = spawn(process.execPath, ["--import", "tsx", PLATFORM], {
      env: { ...process.env, FT_PREFIX: prefix, FT_STATE_ROOT: dir, FT_PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let errors = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      errors = (errors + chunk.toString()).slice(-4000);
      appendFileSync(platformLog, chunk);
    });
    const baseUrl = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`the platform did not start:\n${errors}`)), 90_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const ready = /^ready (\S+)$/m.exec(out);
        if (ready) {
          clearTimeout(timer);
          resolve(ready[1]!);
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the platform exited (${signal ?? code}):\n${errors}`));
      });
    });
    platform = { child, baseUrl };
  }

  async function killPlatform(signal: NodeJS.Signals = "SIGKILL", graceMs = 0): Promise<string> {
    const child = platform!.child;
    platform = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return "already exited";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    if (graceMs && !(await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]))) {
      child.kill("SIGKILL");
      await exited;
      return `no exit on ${signal} within ${graceMs / 1000} s: SIGKILLed`;
    }
    await exited;
    return `exited on ${signal}`;
  }

  /** SIGKILL to LocalStack's process group and to every process of that instance (its DynamoDB Local JVM). */
  async function killLocalStack() {
    const running = localStackUsing(state.localstack);
    expect(running, "the LocalStack this test started").toBeDefined();
    try {
      process.kill(-running!.pid, "SIGKILL");
    } catch {}
    for (const pid of pidsWhere((cmdline) => cmdline.includes(`${state.localstack}/`))) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await until(
      "LocalStack to die",
      async () => fetchOk(`${localstack!.endpoint}/_localstack/health`).then((ok) => (ok ? undefined : true)),
      10_000,
    );
    // Releases the handle's exit hooks and its record; what it would kill is gone already.
    await localstack!.stop();
    localstack = undefined;
  }

  const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const response = await fetch(`${platform!.baseUrl}${path}`, {
      ...rest,
      ...(json !== undefined ? { method: rest.method ?? "POST", body: JSON.stringify(json) } : {}),
      headers: {
        authorization: `Bearer ${key}`,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
        ...rest.headers,
      },
    });
    const isJson = /^application\/json(;|$)/.test(response.headers.get("content-type") ?? "");
    return {
      status: response.status,
      body: (isJson ? await response.json() : await response.text()) as Json,
    };
  };

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined) return value;
      await sleep(200);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const jobIn = (jobId: string, statuses: string[]) =>
    until(`${jobId} ${statuses.join("|")}`, async () => {
      const job = await api(`/fine_tuning/jobs/${jobId}`);
      return statuses.includes(job.body.status) ? job.body : undefined;
    });

  async function upload(): Promise<string> {
    const form = new FormData();
    form.set("purpose", "fine-tune");
    form.set("file", new Blob([DATASET], { type: "application/jsonl" }), "train.jsonl");
    const created = await api("/files", { method: "POST", body: form });
    expect(created.status).toBe(200);
    uploads.set(created.body.id, undefined);
    return created.body.id as string;
  }

  async function createJob(file: string, seed: number, expected: "succeeded" | "failed" = "succeeded") {
    const method = seed === 3 ? "lora" : "full";
    const created = await api("/fine_tuning/jobs", {
      json: {
        model: "tiny-chat",
        training_file: file,
        method: { type: method, hyperparameters: { n_epochs: 1 } },
        seed,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    jobs.set(created.body.id, { method, expected });
    return created.body.id as string;
  }

  /** A seed-3 job that has written its step-1 checkpoint and waits to be stopped. */
  async function checkpointedJob(file: string, expected: "succeeded" | "failed" = "succeeded") {
    const jobId = await createJob(file, 3, expected);
    const manifest = `${jobArtifactKeys(tenantId, jobId, "lora").checkpoints}step-1/checkpoint.json`;
    await until(`${jobId}'s checkpoint`, () =>
      s3Client()
        .send(new HeadObjectCommand({ Bucket: physicalName(prefix, "artifacts"), Key: manifest }))
        .then(() => true),
    );
    return jobId;
  }

  const messages = async (jobId: string) =>
    ((await api(`/fine_tuning/jobs/${jobId}/events?limit=100`)).body.data as Json[]).map(
      (e) => e.message as string,
    );

  /** The invariants, after a restart: returns what it saw, for the matrix. */
  async function checkInvariants(): Promise<string> {
    const files = new FilesRepository(documentClient(), physicalName(prefix, "files"));
    for (const [fileId, validatedAt] of uploads) {
      const file = await until(`${fileId} processed`, async () => {
        const record = await api(`/files/${fileId}`);
        return record.body.status === "processed" ? record.body : undefined;
      });
      expect(file.status).toBe("processed");
      const content = await api(`/files/${fileId}/content`);
      expect(content.status).toBe(200);
      expect(content.body).toBe(DATASET.toString("utf8"));
      const record = await files.get(tenantId, fileId);
      expect(record?.validatedAt, `${fileId} validated`).toBeTypeOf("number");
      // Validated once: a restart never validates a processed file again.
      if (validatedAt !== undefined)
        expect(record!.validatedAt, `${fileId} validated once`).toBe(validatedAt);
      uploads.set(fileId, record!.validatedAt);
    }
    let resumed = 0;
    for (const [jobId, { method, expected }] of jobs) {
      const job = await jobIn(jobId, ["succeeded", "failed", "cancelled"]);
      expect(job.status, jobId).toBe(expected);
      if ((await messages(jobId)).includes("Resumed from checkpoint step 1")) resumed++;
      if (job.status !== "succeeded") continue;
      const artifacts = jobArtifactKeys(tenantId, jobId, method);
      const adapter = await s3Client().send(
        new GetObjectCommand({
          Bucket: physicalName(prefix, "artifacts"),
          Key: `${artifacts.result}adapter_config.json`,
        }),
      );
      expect(await adapter.Body!.transformToString()).toBe("{}");
      expect(job.fine_tuned_model).toBeTruthy();
      expect((await api(`/models/${job.fine_tuned_model}`)).status).toBe(200);
    }
    const counts = [...jobs.values()].reduce<Record<string, number>>((acc, j) => {
      acc[j.expected] = (acc[j.expected] ?? 0) + 1;
      return acc;
    }, {});
    return `${uploads.size} uploads processed once, byte-identical; jobs ${JSON.stringify(counts)} as expected (${resumed} resumed from checkpoint); artifacts readable`;
  }

  afterEach((context) => {
    if (context.task.result?.state === "fail") failed = true;
  });

  beforeAll(async () => {
    await startLocalStack();
    // The tables exist once the platform has started: the tenant comes after.
    await startPlatformProcess();
    const admin = new TenantAdmin(new ApiKeysRepository(documentClient(), physicalName(prefix, "api-keys")));
    ({ apiKey: key, tenantId } = await admin.createTenant("faults"));
    const file = await upload();
    await until(`${file} processed`, async () =>
      (await api(`/files/${file}`)).body.status === "processed" ? true : undefined,
    );
    await createJob(file, 7);
    matrix.push({ killed: "(none: baseline)", outcome: await checkInvariants() });
  }, 180_000);

  afterAll(async () => {
    if (platform) await killPlatform("SIGTERM", 15_000).catch(() => {});
    await localstack?.stop();
    process.env.AWS_ENDPOINT_URL = globalEndpoint;
    rmSync(dir, { recursive: true, force: true });
    if (!failed && !process.env.FT_FAULTS_KEEP_LOG) rmSync(platformLog, { force: true });
    else console.log(`the platform's log: ${platformLog}`);
    console.log(
      `\nfault matrix (${prefix})\n${"component killed (SIGKILL)".padEnd(44)}| outcome after restart\n${"-".repeat(44)}+${"-".repeat(60)}\n${matrix
        .map((row) => `${row.killed.padEnd(44)}| ${row.outcome}`)
        .join("\n")}\n`,
    );
  });

  it("the platform process (gateway and pollers) mid-upload and mid-training: the job resumes, the upload is validated", async () => {
    const file = [...uploads.keys()][0]!;
    const interrupted = await checkpointedJob(file);
    const uploadedNow = await upload();
    const how = await killPlatform("SIGKILL");
    await startPlatformProcess();
    expect(await jobIn(interrupted, ["succeeded", "failed"])).toMatchObject({ status: "succeeded" });
    expect(await messages(interrupted)).toContain("Resumed from checkpoint step 1");
    expect(uploads.has(uploadedNow)).toBe(true);
    matrix.push({ killed: `platform process (${how})`, outcome: await checkInvariants() });
  }, 150_000);

  it("a trainer mid-run: its job fails (terminal), the platform runs the next one", async () => {
    const file = [...uploads.keys()][0]!;
    const killed = await checkpointedJob(file, "failed");
    const pids = pidsWhere((_, environ) => environ.includes(`JOB_ID=${killed}\0`));
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, "SIGKILL");
    const job = await jobIn(killed, ["succeeded", "failed"]);
    await createJob(file, 7);
    matrix.push({
      killed: `trainer (pid ${pids.join(",")})`,
      outcome: `job ${job.status}: ${job.error?.message ?? ""}; ${await checkInvariants()}`,
    });
  }, 120_000);

  it("LocalStack (process group and DynamoDB Local): restarted on its state, then the platform; nothing is lost", async () => {
    const file = [...uploads.keys()][0]!;
    const interrupted = await checkpointedJob(file);
    await upload();
    // What the platform acknowledged is in its mirror once validated (the validator copies uploads first).
    await until("the last upload processed", async () => {
      const last = [...uploads.keys()].at(-1)!;
      return (await api(`/files/${last}`)).body.status === "processed" ? true : undefined;
    });
    // S3 lives in LocalStack's memory: what survives is what the platform has copied to its state dir
    // (every stateSyncSeconds), so the kill waits until the checkpoint is there. A checkpoint younger
    // than that is lost with LocalStack, and a real trainer resumes from an older one (or step 0).
    const manifest = `${jobArtifactKeys(tenantId, interrupted, "lora").checkpoints}step-1/checkpoint.json`;
    const hash = createHash("sha256").update(manifest).digest("hex");
    await until("the checkpoint in the platform's state dir", async () =>
      existsSync(join(state.objects, "artifacts", hash.slice(0, 2), `${hash}.json`)) ? true : undefined,
    );
    await killLocalStack();
    await startLocalStack();
    // S3 and SQS come back empty (only DynamoDB persists in LocalStack): the platform restores its objects
    // and queues when it starts, so it is restarted too.
    const how = await killPlatform("SIGTERM", 15_000);
    await startPlatformProcess();
    expect(await jobIn(interrupted, ["succeeded", "failed"])).toMatchObject({ status: "succeeded" });
    matrix.push({ killed: `LocalStack (platform then ${how})`, outcome: await checkInvariants() });
  }, 170_000);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const fetchOk = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(1000) }).then(
    (r) => r.ok,
    () => false,
  );

/** Pids of this user's processes whose command line (NUL-separated) and environment match. */
function pidsWhere(match: (cmdline: string, environ: string) => boolean): number[] {
  if (!existsSync("/proc/self/environ")) return [];
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      const environ = readFileSync(`/proc/${entry}/environ`, "utf8");
      if (match(cmdline, environ)) found.push(Number(entry));
    } catch {
      // Gone, or not ours.
    }
  }
  return found;
}
