import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The trainer's venv: the local inference server shares its torch, transformers and PEFT. */
export const TRAINER_PYTHON = join(REPO_ROOT, "batch-images/trainer/.venv/bin/python");

/**
 * Makes the tiny base model (`tiny-chat`, no downloads: batch-images/trainer tiny_model.py) under
 * `{baseModelsDir}/tiny-chat/`: seeded weights pre-trained for a few seconds on a synthetic corpus, so
 * every machine makes the same model. The Python side keeps a model made by the current recipe and
 * remakes an older one, so this is cheap once the model exists.
 */
export function ensureTinyModel(baseModelsDir: string, log: (line: string) => void = () => {}): void {
  const dir = join(baseModelsDir, "tiny-chat");
  log(`tiny base model: ${dir}`);
  mkdirSync(baseModelsDir, { recursive: true });
  execFileSync(TRAINER_PYTHON, ["-m", "ft_trainer.tiny_model", dir], { stdio: "inherit" });
}

export interface InferenceServer {
  /** OpenAI-compatible base URL, e.g. http://127.0.0.1:41234/v1 */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts the local inference server (`python -m ft_trainer.serve`): the tiny base model from
 * `baseModelsDir`, adapters and full weights fetched from the artifacts bucket on first use.
 */
export async function startInferenceServer(options: {
  baseModelsDir: string;
  cacheDir: string;
  logFile: string;
  port?: number;
}): Promise<InferenceServer> {
  mkdirSync(options.cacheDir, { recursive: true });
  mkdirSync(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: "a" });
  const child: ChildProcess = spawn(
    TRAINER_PYTHON,
    [
      "-m",
      "ft_trainer.serve",
      "--port",
      String(options.port ?? 0),
      "--base-models-dir",
      options.baseModelsDir,
      "--cache-dir",
      options.cacheDir,
    ],
    { env: { ...process.env, PYTHONUNBUFFERED: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stderr?.pipe(log, { end: false });
  const url = await new Promise<string>((resolveUrl, reject) => {
    let seen = "";
    const timer = setTimeout(
      () => reject(new Error(`inference server did not start; see ${options.logFile}`)),
      120_000,
    );
    child.stdout?.on("data", (chunk: Buffer) => {
      log.write(chunk);
      seen += chunk.toString();
      const match = /ft-serve listening on (http:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolveUrl(`${match[1]}/v1`);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`inference server exited with ${code}; see ${options.logFile}`));
    });
  });
  child.removeAllListeners("exit");
  child.stdout?.pipe(log, { end: false });
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      await new Promise<void>((done) => {
        child.once("exit", () => done());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      });
      log.end();
    },
  };
}
