import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/**
 * The console is browser code (DOM, JSX), outside the root tsconfig (Node code only): its own
 * tsconfig is checked here, so the test command type-checks it too.
 */
describe("the console's types", () => {
  it("pass tsc with web/console/tsconfig.json", () => {
    let output = "";
    try {
      execFileSync(
        process.execPath,
        [`${ROOT}node_modules/typescript/bin/tsc`, "--noEmit", "-p", "web/console/tsconfig.json"],
        {
          cwd: ROOT,
          encoding: "utf8",
          stdio: "pipe",
        },
      );
    } catch (error) {
      output = `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`;
    }
    expect(output).toBe("");
  }, 180_000);
});
