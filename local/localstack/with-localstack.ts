import { spawn } from "node:child_process";
import { ensureLocalStack } from "./harness.ts";

/**
 * `tsx local/localstack/with-localstack.ts <command> [args...]`: runs the command against a LocalStack
 * (AWS_ENDPOINT_URL, region and test credentials exported, unless already set), then stops what it
 * started and exits with the command's exit code. LOCALSTACK_PORT (0: any free port), LOCALSTACK_PERSIST
 * and AWS_ENDPOINT_URL choose which LocalStack; see README.md.
 */
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: tsx local/localstack/with-localstack.ts <command> [args...]");
  process.exit(2);
}
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

// Signals received while LocalStack starts end the start-up; later ones go to the command first.
let child: ReturnType<typeof spawn> | undefined;
let interrupted: NodeJS.Signals | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = signal;
    if (child) child.kill(signal);
    else void localstack?.stop().finally(() => process.exit(128 + (signal === "SIGINT" ? 2 : 15)));
  });
}
let localstack: Awaited<ReturnType<typeof ensureLocalStack>> | undefined;
try {
  localstack = await ensureLocalStack({ handleSignals: false });
} catch (error) {
  console.error(`[localstack] ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
if (interrupted) {
  await localstack.stop();
  process.exit(128 + (interrupted === "SIGINT" ? 2 : 15));
}

const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
child = spawn(command, args, {
  stdio: "inherit",
  env: {
    ...process.env,
    AWS_ENDPOINT_URL: localstack.endpoint,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION ?? region,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? "test",
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
  },
});
const code = await new Promise<number>((resolve) => {
  child?.on("exit", (exitCode, signal) =>
    resolve(exitCode ?? 128 + (signal === "SIGINT" ? 2 : signal === "SIGKILL" ? 9 : 15)),
  );
  child?.on("error", (error) => {
    console.error(`cannot run ${command}: ${error.message}`);
    resolve(127);
  });
});
await localstack.stop();
process.exit(code);
