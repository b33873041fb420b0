import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SDK_DIR = join(ROOT, "test/sdk");

/** Runs a command, echoing its output as it comes; resolves with the exit code and the whole output. */
function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      process.stdout.write(chunk);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/**
 * The zhipuai Python SDK (pinned in test/sdk/requirements.lock), unchanged but for `base_url`, drives
 * the seed's flow against the e2e suite's one local platform: test/sdk/test_zhipuai_sdk.py, run by
 * pytest, with two tenants of its own.
 */
describe("the local platform through the zhipuai SDK", () => {
  it("runs the seed's flow: files, fine-tuning with a seed-style model code, streamed chat, deletes", async () => {
    execFileSync("bash", [join(SDK_DIR, "setup-venv.sh")], { stdio: "inherit" });
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    const env = {
      ...process.env,
      PYTHONUNBUFFERED: "1",
      FT_BASE_URL: inject("platformBaseUrl"),
      FT_API_KEY: (await admin.createTenant("zhipuai app")).apiKey,
      FT_OTHER_API_KEY: (await admin.createTenant("zhipuai other app")).apiKey,
      FT_SAMPLES_DIR: join(ROOT, "samples"),
    };
    const { code, output } = await run(
      join(SDK_DIR, ".venv/bin/python"),
      ["-m", "pytest", SDK_DIR, "-v", "-s", "-p", "no:cacheprovider", "--color=no"],
      env,
    );
    expect(code, output.slice(-4000)).toBe(0);
    // Every test of the file ran (pytest's summary, e.g. "12 passed in 40.1s").
    const tests = readFileSync(join(SDK_DIR, "test_zhipuai_sdk.py"), "utf8").match(/^def test_/gm)?.length;
    expect(output).toMatch(new RegExp(`\\b${tests} passed\\b`));
  });
});
