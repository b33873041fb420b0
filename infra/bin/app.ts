import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";
import { DEFAULT_PREFIX } from "../resources/definitions.ts";
import { PlatformStack } from "../stacks/platform-stack.ts";

/**
 * The CDK app. Context (cdk.json or `-c key=value`):
 * - `prefix`: prefix of physical names, default `ft`;
 * - `alarmEmail`: an address subscribed to the alarm topic;
 * - `nag`: `false` turns the cdk-nag checks off at synth (the tests always run them).
 */
const app = new App();
const prefix = (app.node.tryGetContext("prefix") as string | undefined) ?? DEFAULT_PREFIX;
const alarmEmail = app.node.tryGetContext("alarmEmail") as string | undefined;

new PlatformStack(app, `${prefix}-platform`, {
  prefix,
  ...(alarmEmail ? { alarmEmail } : {}),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: "Self-hosted LLM fine-tuning platform (files, fine-tuning jobs, chat completions)",
});

if (app.node.tryGetContext("nag") !== "false" && app.node.tryGetContext("nag") !== false) {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  Validations.of(app).addPlugins(new ServerlessChecks(app, { verbose: true }));
}
