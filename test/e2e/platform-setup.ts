import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import {
  ensureTinyModel,
  type InferenceServer,
  startInferenceServer,
} from "../../local/platform/inference-server.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { uniquePrefix } from "../integration/aws.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** e.g. http://localhost:41234/v4 */
    platformBaseUrl: string;
    /** The platform's api-keys table, for tests to make their own tenants. */
    apiKeysTable: string;
  }
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * One local platform for every e2e test file (after the LocalStack setup): the tiny base model, the
 * local inference server and the platform with its real trainer. Each file makes its own tenants, so
 * files share the instance without seeing each other's objects.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // As under `npm start` from a plain shell, where only AWS_REGION is set: the harness also exports
  // boto3's AWS_DEFAULT_REGION, which would hide a trainer or inference server that reads only that.
  delete process.env.AWS_DEFAULT_REGION;
  const started = performance.now();
  const baseModelsDir = join(ROOT, ".cache/base-models");
  ensureTinyModel(baseModelsDir);
  const prefix = uniquePrefix("e2e");
  let inference: InferenceServer | undefined;
  let platform: LocalPlatform | undefined;
  try {
    inference = await startInferenceServer({
      baseModelsDir,
      cacheDir: join(ROOT, ".cache/e2e", prefix, "inference"),
      logFile: join(ROOT, ".cache/e2e", prefix, "inference.log"),
    });
    platform = await startPlatform({
      prefix,
      port: 0,
      baseModelsDir,
      inferenceUrl: inference.url,
      console: true,
    });
  } catch (error) {
    await inference?.stop();
    throw error;
  }
  console.log(
    `[e2e] start (tiny model, inference server, platform): ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  project.provide("platformBaseUrl", platform.baseUrl);
  project.provide("apiKeysTable", platform.resources.tables["api-keys"]);
  const running = { platform, inference };
  return async () => {
    await running.platform.stop();
    await running.inference.stop();
  };
}
