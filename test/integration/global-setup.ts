import type { TestProject } from "vitest/node";
import { ensureLocalStack } from "../../local/localstack/harness.ts";

declare module "vitest" {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

/**
 * Makes sure a LocalStack answers before any integration test runs: the one named by AWS_ENDPOINT_URL,
 * else one this setup starts (and stops afterwards).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const localstack = await ensureLocalStack({ log: (line) => console.log(`[localstack] ${line}`) });
  process.env.AWS_ENDPOINT_URL = localstack.endpoint;
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "test";
  process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  project.provide("awsEndpoint", localstack.endpoint);
  console.log(`[localstack] integration tests use ${localstack.endpoint} (${localstack.mode})`);
  return () => localstack.stop();
}
