import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const home = join(root, ".cache/localstack");

/** Pinned to the version installed on the host (install.sh), so both modes behave alike. */
export const LOCALSTACK_IMAGE = "localstack/localstack:4.13.1";
const SERVICES = "s3,sqs,dynamodb,sts";

export interface LocalStackHandle {
  readonly endpoint: string;
  /** external: AWS_ENDPOINT_URL or one already running; docker: a container we started; host: a process we started. */
  readonly mode: "external" | "docker" | "host";
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /** Port of a LocalStack this harness starts; 4566 by default (or LOCALSTACK_PORT). */
  readonly port?: number;
  /** Progress and diagnostics; stderr by default. */
  readonly log?: (line: string) => void;
  /** Seconds to wait for health; 180 by default (a cold first start installs DynamoDB Local's files). */
  readonly timeoutSeconds?: number;
}

/**
 * A LocalStack with S3, SQS and DynamoDB that answers: the one AWS_ENDPOINT_URL names, else one already
 * running on the port, else one started here, in Docker where an engine runs, otherwise on the host from
 * a project-local install (install.sh). Only what this harness started is stopped by `stop()`.
 */
export async function ensureLocalStack(options: LocalStackOptions = {}): Promise<LocalStackHandle> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[localstack] ${line}\n`));
  const timeout = (options.timeoutSeconds ?? 180) * 1000;
  const external = process.env.AWS_ENDPOINT_URL;
  if (external) {
    await waitUntilReady(external, timeout, log);
    return { endpoint: external, mode: "external", stop: async () => {} };
  }
  const port = options.port ?? Number(process.env.LOCALSTACK_PORT ?? 4566);
  const endpoint = `http://127.0.0.1:${port}`;
  if (await healthy(endpoint)) {
    log(`using the LocalStack already running at ${endpoint}`);
    await waitUntilReady(endpoint, timeout, log);
    return { endpoint, mode: "external", stop: async () => {} };
  }
  const handle = (await dockerAvailable()) ? await startDocker(port, log) : await startHost(port, log);
  try {
    await waitUntilReady(endpoint, timeout, log, handle.exited);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  log(`ready at ${endpoint} (${handle.mode})`);
  return handle;
}

interface Started extends LocalStackHandle {
  /** Resolves with a message if the process dies before it is ready. */
  readonly exited: Promise<string>;
}

function environment(port: number): Record<string, string> {
  return {
    SERVICES,
    EAGER_SERVICE_LOADING: "1",
    GATEWAY_LISTEN: `127.0.0.1:${port}`,
    // No DNS server of its own: there is no network to forward to, and port 53 may be taken.
    DNS_ADDRESS: "0",
    // Queue URLs as http://host:port/account/queue, which work without wildcard DNS.
    SQS_ENDPOINT_STRATEGY: "path",
    // Queue URLs name this host, not localhost.localstack.cloud, which needs DNS this machine lacks.
    LOCALSTACK_HOST: `127.0.0.1:${port}`,
    SKIP_SSL_CERT_DOWNLOAD: "1",
    // Check presigned URL signatures as S3 does, so pinned size and content type are really enforced.
    S3_SKIP_SIGNATURE_VALIDATION: "0",
    LOCALSTACK_TELEMETRY_DISABLED: "1",
    DISABLE_EVENTS: "1",
  };
}

async function dockerAvailable(): Promise<boolean> {
  if (process.env.LOCALSTACK_USE_DOCKER === "0") return false;
  try {
    await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function startDocker(port: number, log: (line: string) => void): Promise<Started> {
  const name = `ft-localstack-${port}`;
  log(`starting ${LOCALSTACK_IMAGE} in Docker as ${name}`);
  const env = Object.entries({ ...environment(4566), GATEWAY_LISTEN: "0.0.0.0:4566" }).flatMap(([k, v]) => [
    "-e",
    `${k}=${v}`,
  ]);
  await run("docker", [
    "run",
    "-d",
    "--rm",
    "--name",
    name,
    "-p",
    `127.0.0.1:${port}:4566`,
    ...env,
    LOCALSTACK_IMAGE,
  ]);
  const exited = new Promise<string>(() => {});
  const stop = async () => {
    await run("docker", ["rm", "-f", name]).catch(() => {});
  };
  return { endpoint: `http://127.0.0.1:${port}`, mode: "docker", stop, exited };
}

async function startHost(port: number, log: (line: string) => void): Promise<Started> {
  log("no Docker engine: running LocalStack on the host (first run installs it into .cache/localstack)");
  await new Promise<void>((ok, fail) => {
    const install = spawn("bash", [join(root, "local/localstack/install.sh")], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    install.on("exit", (code) =>
      code === 0 ? ok() : fail(new Error(`local/localstack/install.sh failed with exit code ${code}`)),
    );
    install.on("error", fail);
  });
  mkdirSync(home, { recursive: true });
  const logFile = join(home, "localstack.log");
  const out = createWriteStream(logFile, { flags: "w" });
  const child: ChildProcess = spawn(join(home, "venv/bin/python"), ["-m", "localstack.runtime.main"], {
    cwd: home,
    // Its own process group, so stop() also ends DynamoDB Local, its Java child.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...environment(port),
      FILESYSTEM_ROOT: join(home, "filesystem"),
      // This machine may carry /.dockerenv; LocalStack must still use the host's directories.
      OVERRIDE_IN_DOCKER: "0",
    },
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<string>((resolveExit) => {
    child.on("exit", (code, signal) => resolveExit(`LocalStack exited (${signal ?? code}); see ${logFile}`));
  });
  const stopOnExit = () => killGroup(child, "SIGKILL");
  process.once("exit", stopOnExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", stopOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child, "SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) killGroup(child, "SIGKILL");
    // LocalStack may leave DynamoDB Local behind if it dies first; it shares the process group.
    killGroup(child, "SIGKILL");
  };
  return { endpoint: `http://127.0.0.1:${port}`, mode: "host", stop, exited };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** Health says running for the services we use, and DynamoDB (which starts a JVM) answers a call. */
async function waitUntilReady(
  endpoint: string,
  timeoutMs: number,
  log: (line: string) => void,
  exited?: Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let died: string | undefined;
  void exited?.then((message) => {
    died = message;
  });
  let last = "";
  const dynamo = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  try {
    while (Date.now() < deadline) {
      if (died) throw new Error(`${died}\n${await logTail()}`);
      try {
        const response = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
        const { services } = (await response.json()) as { services: Record<string, string> };
        const states = ["s3", "sqs", "dynamodb"].map((s) => `${s}=${services[s]}`).join(" ");
        if (states !== last) log(`health: ${states}`);
        last = states;
        if (
          ["s3", "sqs", "dynamodb"].every((s) => services[s] === "running" || services[s] === "available")
        ) {
          await dynamo.send(new ListTablesCommand({}));
          return;
        }
      } catch {
        // Not up yet.
      }
      await sleep(500);
    }
  } finally {
    dynamo.destroy();
  }
  throw new Error(
    `LocalStack at ${endpoint} was not ready within ${Math.round(timeoutMs / 1000)} s\n${await logTail()}`,
  );
}

async function logTail(): Promise<string> {
  try {
    const { stdout } = await run("tail", ["-n", "40", join(home, "localstack.log")]);
    return `last lines of ${join(home, "localstack.log")}:\n${stdout}`;
  } catch {
    return "";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
