import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Install and run directories; FT_LOCALSTACK_HOME moves them (install.sh reads it too). */
const home = process.env.FT_LOCALSTACK_HOME ?? join(root, ".cache/localstack");

/** The host install's version (install.sh): the Docker image is pinned to it, so both modes behave alike. */
export const LOCALSTACK_VERSION = "4.13.1";
export const LOCALSTACK_IMAGE = `localstack/localstack:${LOCALSTACK_VERSION}`;
/** What the platform uses (sts: the SDKs' credential checks). Fewer services start faster. */
const SERVICES = "s3,sqs,dynamodb,sts";
const REQUIRED = ["s3", "sqs", "dynamodb"];
const DEFAULT_PORT = 4566;

export interface LocalStackHandle {
  readonly endpoint: string;
  /** external: AWS_ENDPOINT_URL or one this checkout already runs; docker: a container we started; host: a process we started. */
  readonly mode: "external" | "docker" | "host";
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /**
   * Port of a LocalStack this harness starts: 4566 by default (or LOCALSTACK_PORT); 0 picks a free one.
   * A busy port fails with a message, unless it is a LocalStack this checkout started and still runs.
   */
  readonly port?: number;
  /**
   * Keep state across restarts (or LOCALSTACK_PERSIST=1). Host mode: one fixed directory, kept between
   * runs, and LocalStack's PERSISTENCE=1. See README.md for what survives.
   */
  readonly persist?: boolean;
  /**
   * Keep state across restarts in this directory (implies `persist`): LocalStack's FILESYSTEM_ROOT on
   * the host, its `/var/lib/localstack` volume in Docker. `npm start` keeps one per resource prefix.
   */
  readonly stateDir?: string;
  /** Progress and diagnostics; stderr by default. */
  readonly log?: (line: string) => void;
  /** Seconds to wait for health (install time not included); 120 by default (or LOCALSTACK_START_TIMEOUT). */
  readonly timeoutSeconds?: number;
  /**
   * Stop what was started on SIGINT/SIGTERM, then exit as the signal would (unless the program has its own
   * handler for it). True by default; set false where the program stops it itself. Exit always stops it.
   */
  readonly handleSignals?: boolean;
}

/**
 * A LocalStack with S3, SQS and DynamoDB that answers: the one AWS_ENDPOINT_URL names; else one this
 * checkout already runs on the port; else one started here, in Docker where an engine runs, otherwise on
 * the host from the project-local install (install.sh). `stop()` stops only what this call started.
 */
export async function ensureLocalStack(options: LocalStackOptions = {}): Promise<LocalStackHandle> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[localstack] ${line}\n`));
  const timeout = (options.timeoutSeconds ?? Number(process.env.LOCALSTACK_START_TIMEOUT ?? 120)) * 1000;
  const stateDir = options.stateDir ? resolve(options.stateDir) : undefined;
  const persist = stateDir !== undefined || (options.persist ?? process.env.LOCALSTACK_PERSIST === "1");
  const signals = options.handleSignals ?? true;

  const external = process.env.AWS_ENDPOINT_URL;
  if (external) {
    log(`using AWS_ENDPOINT_URL=${external}`);
    await waitUntilReady(external, timeout, log);
    return { endpoint: external, mode: "external", stop: async () => {} };
  }

  await reapOrphans(log);
  let port = options.port ?? Number(process.env.LOCALSTACK_PORT ?? DEFAULT_PORT);
  if (port === 0) port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  if (await listening(port)) {
    const ours = liveInstances().find((instance) => instance.port === port);
    if (ours) {
      log(
        `reusing the LocalStack this checkout runs at ${endpoint} (pid ${ours.pid}, started by pid ${ours.ownerPid})`,
      );
      await waitUntilReady(endpoint, timeout, log);
      return { endpoint, mode: "external", stop: async () => {} };
    }
    const what = (await healthy(endpoint))
      ? "a LocalStack not started from this checkout"
      : "another program";
    throw new Error(
      `port ${port} is in use by ${what}. Use it with AWS_ENDPOINT_URL=${endpoint}, stop it, ` +
        "or start one on another port: LOCALSTACK_PORT=<port> (0 picks a free one).",
    );
  }

  const started = Date.now();
  const handle = (await dockerAvailable())
    ? await startDocker(port, persist, stateDir, log, signals)
    : await startHost(port, persist, stateDir, log, signals);
  const launched = Date.now();
  try {
    await waitUntilReady(endpoint, timeout, log, handle);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  log(
    `ready at ${endpoint} (${handle.mode}${persist ? ", persistent" : ""}) in ${secs(Date.now() - launched)} s` +
      (launched - started > 1000 ? ` after ${secs(launched - started)} s of install` : ""),
  );
  return handle;
}

interface Started extends LocalStackHandle {
  /** Set when the process (or container) died before it was ready. */
  died?: string;
  readonly logFile?: string;
}

/** Settings for LocalStack itself, the same on the host and in Docker. */
function environment(port: number, persist: boolean): Record<string, string> {
  return {
    SERVICES,
    // Starts every service (and DynamoDB Local's JVM) up front instead of on the first request.
    EAGER_SERVICE_LOADING: "1",
    GATEWAY_LISTEN: `127.0.0.1:${port}`,
    // URLs LocalStack hands out (queue URLs): 127.0.0.1, not localhost.localstack.cloud, which needs DNS.
    LOCALSTACK_HOST: `127.0.0.1:${port}`,
    // No DNS server of its own: there is no upstream to forward to, and port 53 may be taken.
    DNS_ADDRESS: "0",
    // Queue URLs as http://host:port/<account>/<queue>, which need no wildcard DNS.
    SQS_ENDPOINT_STRATEGY: "path",
    // Presigned URLs are checked as S3 does, so a pinned content type and length are really enforced.
    S3_SKIP_SIGNATURE_VALIDATION: "0",
    // Nothing may be fetched at run time: no certificate download, no analytics events.
    SKIP_SSL_CERT_DOWNLOAD: "1",
    DISABLE_EVENTS: "1",
    PERSISTENCE: persist ? "1" : "0",
  };
}

async function dockerAvailable(): Promise<boolean> {
  if (process.env.LOCALSTACK_USE_DOCKER === "0") return false;
  try {
    await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 5000 });
    return true;
  } catch {
    if (process.env.LOCALSTACK_USE_DOCKER === "1")
      throw new Error("LOCALSTACK_USE_DOCKER=1 but `docker info` fails");
    return false;
  }
}

async function startDocker(
  port: number,
  persist: boolean,
  stateDir: string | undefined,
  log: (line: string) => void,
  signals: boolean,
): Promise<Started> {
  const name = `ft-localstack-${port}`;
  log(`starting ${LOCALSTACK_IMAGE} in Docker as ${name}`);
  await run("docker", ["rm", "-f", name]).catch(() => {});
  const env = { ...environment(port, persist), GATEWAY_LISTEN: "0.0.0.0:4566" };
  const volume = persist ? ["-v", `${stateDir ?? join(home, "docker-volume")}:/var/lib/localstack`] : [];
  await run("docker", [
    "run",
    "-d",
    "--rm",
    "--name",
    name,
    "-p",
    `127.0.0.1:${port}:4566`,
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    ...volume,
    LOCALSTACK_IMAGE,
  ]);
  const kill = () => {
    try {
      execFileSync("docker", ["rm", "-f", name], { stdio: "ignore", timeout: 20_000 });
    } catch {
      // Already gone.
    }
  };
  const handle: Started = {
    endpoint: `http://127.0.0.1:${port}`,
    mode: "docker",
    stop: async () => {
      release();
      await run("docker", ["rm", "-f", name]).catch(() => {});
    },
  };
  const release = onParentExit(kill, handle.stop, signals);
  return handle;
}

/** What a running host instance records in its directory, to be found again (reuse, orphan cleanup). */
interface Instance {
  readonly pid: number;
  readonly ownerPid: number;
  readonly port: number;
  readonly root: string;
}

async function startHost(
  port: number,
  persist: boolean,
  stateDir: string | undefined,
  log: (line: string) => void,
  signals: boolean,
): Promise<Started> {
  log("no Docker engine: running LocalStack on the host (the first run installs it into .cache/localstack)");
  await installHost();

  // Each instance has its own FILESYSTEM_ROOT (DynamoDB Local's files and LocalStack's tmp are there), so
  // several can run at once; the installed libraries are shared through a link. Its record is always in
  // run/<port>/, where the next start finds it (reuse, orphans) wherever the root is.
  const recordDir = join(home, "run", String(port));
  const fsRoot = persist ? (stateDir ?? join(home, "persistent")) : recordDir;
  const other = liveInstances().find((instance) => instance.root === fsRoot);
  if (other) throw new Error(`${fsRoot} is in use by LocalStack pid ${other.pid} (port ${other.port})`);
  rmSync(recordDir, { recursive: true, force: true });
  mkdirSync(recordDir, { recursive: true });
  const libLink = join(fsRoot, "var/lib/localstack/lib");
  mkdirSync(dirname(libLink), { recursive: true });
  rmSync(libLink, { recursive: true, force: true });
  symlinkSync(join(home, "lib"), libLink);

  const logFile = join(home, port === DEFAULT_PORT ? "localstack.log" : `localstack-${port}.log`);
  const out = createWriteStream(logFile, { flags: "w" });
  const child: ChildProcess = spawn(join(home, "venv/bin/python"), ["-m", "localstack.runtime.main"], {
    cwd: fsRoot,
    // Its own process group, so stop() reaches its helpers too; DynamoDB Local (a JVM) starts a session
    // of its own and is found by its command line, which names fsRoot.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...environment(port, persist),
      FILESYSTEM_ROOT: fsRoot,
      // Some machines carry /.dockerenv; LocalStack must still use host paths.
      OVERRIDE_IN_DOCKER: "0",
      // DynamoDB Local and LocalStack never phone home.
      DDB_LOCAL_TELEMETRY: "0",
    },
  });
  const pid = child.pid;
  if (!pid) throw new Error("could not start LocalStack (python from the venv did not run)");
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  log(`LocalStack ${LOCALSTACK_VERSION} pid ${pid} on port ${port}, log ${logFile}`);
  const record: Instance = { pid, ownerPid: process.pid, port, root: fsRoot };
  writeFileSync(join(recordDir, "instance.json"), `${JSON.stringify(record)}\n`);

  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const handle: Started = {
    endpoint: `http://127.0.0.1:${port}`,
    mode: "host",
    logFile,
    stop: async () => {},
  };
  child.once("exit", (code, signal) => {
    handle.died = `LocalStack exited (${signal ?? `code ${code}`})`;
  });
  let stopped: Promise<void> | undefined;
  handle.stop = () => {
    stopped ??= (async () => {
      release();
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(pid, "SIGTERM");
        // LocalStack stops its services (and DynamoDB Local) on SIGTERM; a few seconds is plenty.
        const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
        if (!done) log("LocalStack did not stop within 10 s; killing it");
      }
      killInstance(record, "SIGKILL");
      rmSync(recordDir, { recursive: true, force: true });
    })();
    return stopped;
  };
  const release = onParentExit(() => killInstance(record, "SIGKILL"), handle.stop, signals);
  return handle;
}

async function installHost(): Promise<void> {
  await new Promise<void>((ok, fail) => {
    const install = spawn("bash", [join(root, "local/localstack/install.sh")], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, FT_LOCALSTACK_HOME: home },
    });
    install.on("exit", (code) =>
      code === 0 ? ok() : fail(new Error(`local/localstack/install.sh failed with exit code ${code}`)),
    );
    install.on("error", fail);
  });
}

/**
 * Stops what we started when this process ends: synchronously on exit, and on SIGINT/SIGTERM (after which
 * the process exits as the signal would have, unless the program handles that signal itself).
 * Returns a function that removes these hooks.
 */
function onParentExit(killNow: () => void, stop: () => Promise<void>, signals: boolean): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    const othersHandle = process.listenerCount(signal) > 1;
    release();
    void stop().finally(() => {
      if (!othersHandle) process.kill(process.pid, signal);
    });
  };
  const onExit = () => killNow();
  process.once("exit", onExit);
  if (signals) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  function release() {
    process.removeListener("exit", onExit);
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
  return release;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Kills an instance's process group and its DynamoDB Local JVM (its own session; found by fsRoot). */
function killInstance(instance: Instance, signal: NodeJS.Signals): void {
  killGroup(instance.pid, signal);
  for (const pid of processesMentioning(`${instance.root}/`)) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Pids whose command line contains `text` (Linux /proc; `ps` elsewhere). Synchronous: usable on exit. */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  if (existsSync("/proc/self/cmdline")) {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").includes(text)) {
          found.push(Number(entry));
        }
      } catch {
        // Gone meanwhile, or not ours to read.
      }
    }
    return found;
  }
  try {
    for (const line of execFileSync("ps", ["-axo", "pid=,command="], { encoding: "utf8" }).split("\n")) {
      const match = /^\s*(\d+)\s+(.*)$/.exec(line);
      if (match?.[2]?.includes(text) && Number(match[1]) !== process.pid) found.push(Number(match[1]));
    }
  } catch {
    // No ps: nothing found.
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readRecord(dir: string): Instance | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "instance.json"), "utf8")) as Instance;
  } catch {
    return undefined; // never started, or stopped cleanly
  }
}

/** Instances recorded under home (run/<port>/; persistent/ for records of older versions). */
function recordedInstances(): Instance[] {
  const dirs = [join(home, "persistent")];
  try {
    dirs.push(...readdirSync(join(home, "run")).map((port) => join(home, "run", port)));
  } catch {
    // No run directory yet.
  }
  return dirs.flatMap((dir) => readRecord(dir) ?? []);
}

function isLocalStack(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("localstack.runtime.main");
  } catch {
    return alive(pid);
  }
}

/**
 * The LocalStack of this checkout that runs on `stateDir` (a `stateDir` or persistent root) with its
 * owner alive, if any: such a directory must not be deleted under it.
 */
export function localStackUsing(
  stateDir: string,
): { pid: number; port: number; ownerPid: number } | undefined {
  const root = resolve(stateDir);
  const instance = liveInstances().find((i) => i.root === root);
  return instance && { pid: instance.pid, port: instance.port, ownerPid: instance.ownerPid };
}

/** Instances of this checkout that run and whose owner (the process that started them) still runs. */
function liveInstances(): Instance[] {
  return recordedInstances().filter((i) => isLocalStack(i.pid) && alive(i.ownerPid));
}

/** LocalStacks (and DynamoDB Local JVMs) left behind by a process that died without stopping them. */
async function reapOrphans(log: (line: string) => void): Promise<void> {
  for (const instance of recordedInstances()) {
    if (alive(instance.ownerPid) && isLocalStack(instance.pid)) continue;
    const leftovers = [
      ...(isLocalStack(instance.pid) ? [instance.pid] : []),
      ...processesMentioning(`${instance.root}/`),
    ];
    if (leftovers.length > 0) {
      log(
        `stopping pids ${leftovers.join(", ")} left behind by a run that died (owner pid ${instance.ownerPid})`,
      );
      if (isLocalStack(instance.pid)) killGroup(instance.pid, "SIGKILL");
      killInstance(instance, "SIGKILL");
      // Until they are gone, their port is still taken.
      for (let i = 0; i < 50 && leftovers.some(alive); i++) await sleep(100);
    }
    // A persistent instance's run/<port>/ holds only its record; a non-persistent one's is its root,
    // wiped by the next start on that port.
    const recordDir = join(home, "run", String(instance.port));
    if (readRecord(recordDir)?.pid === instance.pid) {
      rmSync(instance.root === recordDir ? join(recordDir, "instance.json") : recordDir, {
        recursive: true,
        force: true,
      });
    }
    rmSync(join(instance.root, "instance.json"), { force: true });
  }
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? ok(address.port) : fail(new Error("no port")),
      );
    });
  });
}

async function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      ok(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      ok(true);
    });
    socket.once("error", () => ok(false));
  });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** Health says s3, sqs and dynamodb are up, and DynamoDB (a JVM behind LocalStack) answers a real call. */
async function waitUntilReady(
  endpoint: string,
  timeoutMs: number,
  log: (line: string) => void,
  started?: Started,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  const dynamo = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  try {
    while (Date.now() < deadline) {
      if (started?.died) throw new Error(`${started.died}\n${await logTail(started.logFile)}`);
      try {
        const response = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
        const { services } = (await response.json()) as { services: Record<string, string> };
        const states = REQUIRED.map((s) => `${s}=${services[s] ?? "missing"}`).join(" ");
        if (states !== last) log(`health: ${states}`);
        last = states;
        if (REQUIRED.every((s) => services[s] === "running" || services[s] === "available")) {
          await dynamo.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(10_000) });
          return;
        }
      } catch {
        // Not up yet.
      }
      await sleep(250);
    }
  } finally {
    dynamo.destroy();
  }
  throw new Error(
    `LocalStack at ${endpoint} was not ready within ${secs(timeoutMs)} s (last health: ${last || "no answer"})` +
      `\n${await logTail(started?.logFile)}`,
  );
}

async function logTail(logFile: string | undefined): Promise<string> {
  if (!logFile) return "";
  try {
    const lines = readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-40);
    return `last lines of ${logFile}:\n${lines.join("\n")}`;
  } catch {
    return "";
  }
}

const secs = (ms: number) => (ms / 1000).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
