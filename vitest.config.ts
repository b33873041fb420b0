import { defineConfig } from "vitest/config";

/**
 * Four projects: `unit` (pure domain and handlers, no network), `infra` (CDK assertions and cdk-nag),
 * `integration` (adapters and handlers against LocalStack; run through
 * local/localstack/with-localstack.ts, which provides AWS_ENDPOINT_URL) and `e2e` (one local platform
 * with the real trainer and inference server, driven by the openai npm client and the zhipuai Python SDK).
 */
export default defineConfig({
  test: {
    projects: [
      // 2 cores shared with LocalStack and a trainer run: a generous timeout still catches a hang.
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node", testTimeout: 30_000 },
      },
      {
        test: {
          name: "infra",
          include: ["test/infra/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
          globalSetup: ["test/integration/global-setup.ts"],
          // One LocalStack; files run one after another so their timings and resources stay apart.
          fileParallelism: false,
        },
      },
      {
        // The local platform end to end: real CPU training and inference, so minutes, not seconds.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 1_200_000,
          hookTimeout: 300_000,
          // LocalStack first, then the one platform every e2e file shares.
          globalSetup: ["test/integration/global-setup.ts", "test/e2e/platform-setup.ts"],
          fileParallelism: false,
        },
      },
    ],
  },
});
