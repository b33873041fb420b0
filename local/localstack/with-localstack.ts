import { spawn } from "node:child_process";
import { ensureLocalStack } from "./harness.ts";

/**
 * `tsx local/localstack/with-localstack.ts <command> [args...]`: runs the command with a LocalStack
 * (AWS_ENDPOINT_URL and test credentials exported), then stops what it started and exits with the
 * command's exit code.
 */
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: tsx local/localstack/with-localstack.ts <command> [args...]");
  process.exit(2);
}
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const localstack = await ensureLocalStack();
const child = spawn(command, args, {
  stdio: "inherit",
  env: {
    ...process.env,
    AWS_ENDPOINT_URL: localstack.endpoint,
    AWS_REGION: process.env.AWS_REGION ?? "us-east-1",
    AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION ?? process.env.AWS_REGION ?? "us-east-1",
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? "test",
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
  },
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => child.kill(signal));
}
const code = await new Promise<number>((resolve) => {
  child.on("exit", (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
  child.on("error", (error) => {
    console.error(`cannot run ${command}: ${error.message}`);
    resolve(127);
  });
});
await localstack.stop();
process.exit(code);
