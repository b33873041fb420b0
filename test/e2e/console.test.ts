import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page, type Response } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const AXE_SOURCE = readFileSync(join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");
const ARTIFACTS = join(ROOT, ".cache/artifacts/console");
/** The two screenshots the README shows; refreshed only when asked (`UPDATE_DOCS_SCREENSHOTS=1`). */
const DOCS_SCREENSHOTS: Record<string, string> = {
  "job-loss-curve": "console-job.png",
  "playground-compare": "console-playground.png",
};
/** The smallest valid dataset (10 examples, the validator's minimum) and the malformed sample. */
const VALID = join(ROOT, "test/fixtures/datasets/crlf.jsonl");
const MALFORMED = join(ROOT, "samples/malformed.jsonl");
/** samples/malformed.jsonl's bad lines (samples/README.md): invalid JSON, unknown role, wrong order, blank answer. */
const MALFORMED_LINES = [4, 7, 11, 14];

/** The page's globals this file reads (the project's TypeScript has no DOM library). */
interface Browserish {
  document: { scrollingElement: { scrollWidth: number } };
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
  targets: string[];
}

/**
 * The console in real headless Chromium (Debian's `chromium`, driven by playwright-core) against the
 * e2e suite's local platform, which serves it at its root, following what a person does: sign in
 * (a wrong key first), upload a valid file and the malformed sample, read the malformed one's line
 * numbers, estimate and create a LoRA job on tiny-chat and watch its loss curve grow, chat with the
 * result beside its base model, and sign in as another tenant who sees none of it. axe-core checks every
 * page; screenshots of the main pages go to .cache/artifacts/console/.
 */
describe("the console in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  let apiBaseUrl: string;
  let keyA: string;
  let keyB: string;
  const axeSummary: [string, number, number][] = [];
  const pageErrors: string[] = [];
  /** What the flows made, for the next flows (and the other tenant's checks). */
  const made: { validFileId?: string; jobId?: string; modelCode?: string } = {};

  beforeAll(async () => {
    apiBaseUrl = inject("platformBaseUrl");
    origin = apiBaseUrl.replace(/\/v4\/?$/, "");
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    keyA = (await admin.createTenant("console a")).apiKey;
    keyB = (await admin.createTenant("console b")).apiKey;
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    page = await context.newPage();
    // A CSP refusal, an uncaught exception or a failed asset shows up here; the last test reads it.
    page.on("console", (message) => {
      if (message.type() === "error" && !/Failed to load resource.*40[14]/.test(message.text())) {
        pageErrors.push(message.text());
      }
    });
    page.on("pageerror", (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    console.log(
      `[console] axe-core (serious or critical / all violations) per page:\n${axeSummary
        .map(([name, severe, all]) => `  ${name.padEnd(28)} ${severe} / ${all}`)
        .join("\n")}`,
    );
  });

  /** axe-core on the page as it is now; fails on any serious or critical violation. */
  async function checkAccessibility(name: string): Promise<void> {
    // Evaluated rather than added as a <script>: the console's CSP (script-src 'self') refuses inline
    // scripts, and the page keeps its CSP during the test.
    await page.evaluate(AXE_SOURCE);
    const violations = await page.evaluate(async () => {
      type AxeResult = {
        violations: {
          id: string;
          impact: string | null;
          help: string;
          nodes: { target: string[] }[];
        }[];
      };
      const axe = (globalThis as unknown as { axe: { run: (o: unknown) => Promise<AxeResult> } }).axe;
      const result = await axe.run({ resultTypes: ["violations"] });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.length,
        targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
      }));
    });
    const severe = violations.filter((v: AxeViolation) => v.impact === "serious" || v.impact === "critical");
    axeSummary.push([name, severe.length, violations.length]);
    expect(severe, `${name}: ${JSON.stringify(severe, null, 2)}`).toEqual([]);
  }

  /** The viewport as it is; `height` makes it taller for this one picture (the job page's curve). */
  async function screenshot(name: string, height?: number): Promise<void> {
    const path = join(ARTIFACTS, `${name}.png`);
    const viewport = page.viewportSize()!;
    if (height) await page.setViewportSize({ width: viewport.width, height });
    await page.screenshot({ path });
    if (height) await page.setViewportSize(viewport);
    const docs = DOCS_SCREENSHOTS[name];
    if (docs && process.env.UPDATE_DOCS_SCREENSHOTS === "1") {
      mkdirSync(join(ROOT, "docs/screenshots"), { recursive: true });
      copyFileSync(path, join(ROOT, "docs/screenshots", docs));
    }
  }

  async function signIn(key: string): Promise<void> {
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(true);
  }

  async function go(link: "Files" | "Fine-tuning" | "Models" | "Playground"): Promise<void> {
    await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).click();
    await expect.poll(() => page.getByRole("heading", { level: 1 }).first().textContent()).toBe(link);
  }

  /** The status badge of a file's row in the files table. */
  const fileStatus = (name: string) =>
    page.getByRole("row").filter({ hasText: name }).locator("[data-status]").getAttribute("data-status");

  it("signs in with a tenant's key; a wrong key shows the API's own message", async () => {
    await page.goto(`${origin}/`);
    await expect.poll(() => page.getByLabel("API key").isVisible()).toBe(true);
    await checkAccessibility("sign-in");

    const wrong = await fetch(`${apiBaseUrl}/models`, { headers: { authorization: "Bearer sk-wrong" } });
    const { error } = (await wrong.json()) as { error: { message: string } };
    await page.getByLabel("API key").fill("sk-wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toBe(error.message);
    await expect.poll(() => page.getByRole("button", { name: "Sign out" }).count()).toBe(0);

    await signIn(keyA);
    for (const link of ["Files", "Fine-tuning", "Models", "Playground"]) {
      expect(await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).count()).toBe(
        1,
      );
    }
  });

  it("uploads a valid file that becomes processed, and shows the malformed sample's errors by line", async () => {
    await go("Files");
    const input = page.getByLabel("Training file");
    await input.setInputFiles(VALID);
    const progress = page.getByRole("progressbar", { name: "Uploading crlf.jsonl" });
    await expect.poll(() => progress.evaluate((p) => (p as unknown as { value: number }).value)).toBe(100);
    // The list polls while a file is unfinished: the validator's verdict arrives without a reload.
    await expect.poll(() => fileStatus("crlf.jsonl"), { timeout: 120_000, interval: 500 }).toBe("processed");
    const href = await page.getByRole("link", { name: "crlf.jsonl" }).getAttribute("href");
    made.validFileId = href!.replace("#/files/", "");
    expect(made.validFileId).toMatch(/^file-/);

    await input.setInputFiles(MALFORMED);
    await expect.poll(() => fileStatus("malformed.jsonl"), { timeout: 120_000, interval: 500 }).toBe("error");
    await checkAccessibility("files");
    await screenshot("files");

    await page.getByRole("link", { name: "malformed.jsonl" }).click();
    const errors = page.getByRole("table", { name: "Errors by line" });
    await expect.poll(() => errors.isVisible(), { timeout: 30_000 }).toBe(true);
    // The first cell of each row is its line number.
    const lines = await errors
      .locator("tbody tr")
      .evaluateAll((rows) => rows.map((row) => Number(row.querySelector("th, td")?.textContent)));
    expect(lines).toEqual(MALFORMED_LINES);
    expect(
      await page.getByRole("table", { name: "Errors per reason" }).locator("tbody tr").count(),
    ).toBeGreaterThan(1);
    await checkAccessibility("file report");
    await screenshot("file-report");
  });

  it("estimates, then creates a LoRA job on tiny-chat whose loss curve draws points while it trains", async () => {
    await go("Fine-tuning");
    await page.getByRole("combobox", { name: "Base model" }).selectOption("tiny-chat");
    await page.getByRole("combobox", { name: "Method" }).selectOption("lora");
    await page.getByRole("combobox", { name: "Training file" }).selectOption(made.validFileId!);
    // 10 examples × 30 epochs, batch 1: a few hundred CPU steps, long enough to see the curve grow.
    await page.getByRole("textbox", { name: /^Epochs/ }).fill("30");
    await checkAccessibility("fine-tuning");
    await page.getByRole("button", { name: "Estimate" }).click();

    const estimate = page.getByRole("region", { name: "Estimate" });
    await expect.poll(() => estimate.isVisible(), { timeout: 30_000 }).toBe(true);
    for (const field of [
      "trained_tokens",
      "estimated_cost_usd",
      "estimated_duration_seconds",
      "resources",
      "queue_position",
    ]) {
      expect((await estimate.locator(`[data-field="${field}"]`).textContent())?.trim(), field).toBeTruthy();
    }
    expect(
      Number((await estimate.locator('[data-field="trained_tokens"]').textContent())!.replace(/\D/g, "")),
    ).toBeGreaterThan(0);
    await checkAccessibility("fine-tuning estimate");
    await page.getByRole("button", { name: "Create job" }).click();

    await expect.poll(() => new URL(page.url()).hash, { timeout: 30_000 }).toMatch(/^#\/jobs\/ftjob-/);
    made.jobId = new URL(page.url()).hash.replace("#/jobs/", "");
    const chart = page.getByRole("img", { name: "Loss curve" });
    const stage = page.locator('ol.timeline li[aria-current="step"]');
    const whileRunning = new Set<number>();
    let status = "";
    const deadline = Date.now() + 15 * 60_000;
    while (Date.now() < deadline) {
      status = ((await stage.getAttribute("class").catch(() => "")) ?? "").match(/stage-(\w+)$/)?.[1] ?? "";
      if (status === "succeeded" || status === "failed" || status === "cancelled") break;
      const points = Number(
        (await chart.getAttribute("data-points", { timeout: 1000 }).catch(() => null)) ?? 0,
      );
      if (status === "running" && points > 0 && !whileRunning.has(points)) {
        whileRunning.add(points);
        if (whileRunning.size === 2) await checkAccessibility("job (running)");
      }
      await page.waitForTimeout(400);
    }
    expect(status).toBe("succeeded");
    // The curve grew while the job ran: at least two point counts seen before it ended.
    expect(
      [...whileRunning].length,
      `data-points seen while running: ${[...whileRunning]}`,
    ).toBeGreaterThanOrEqual(2);
    const finalPoints = Number(await chart.getAttribute("data-points"));
    expect(finalPoints).toBeGreaterThanOrEqual(Math.max(...whileRunning));
    made.modelCode = (await page
      .locator("dt", { hasText: /^Model code$/ })
      .locator("xpath=following-sibling::dd[1]")
      .textContent())!.trim();
    expect(made.modelCode).toBeTruthy();
    await checkAccessibility("job (succeeded)");
    await screenshot("job-loss-curve", 1240);
  });

  it("chats with the trained model beside its base model, both answers streamed", async () => {
    await go("Playground");
    await page.getByRole("combobox", { name: "Model" }).selectOption(made.modelCode!);
    await page.getByRole("checkbox", { name: "Compare with base model" }).check();
    await page.getByRole("spinbutton", { name: "Max tokens" }).fill("24");
    await page.getByRole("textbox", { name: "Message" }).fill("Who brews Ketch ale?");
    const streams: Promise<string>[] = [];
    const onResponse = (response: Response) => {
      if (response.url().endsWith("/chat/completions")) {
        expect(response.headers()["content-type"]).toContain("text/event-stream");
        streams.push(response.text());
      }
    };
    page.on("response", onResponse);
    await page.getByRole("button", { name: "Send" }).click();

    for (const model of [made.modelCode!, "tiny-chat"]) {
      const panel = page.getByRole("region", { name: model, exact: true });
      const answer = panel.locator(".message-assistant:not(.pending) .content");
      await expect.poll(() => answer.count(), { timeout: 120_000 }).toBe(1);
      expect((await answer.textContent())!.trim().length, model).toBeGreaterThan(0);
      expect(await panel.getByRole("alert").count()).toBe(0);
    }
    page.off("response", onResponse);
    // Two streams, one per panel, each in several chunks ending with [DONE].
    const bodies = await Promise.all(streams);
    expect(bodies).toHaveLength(2);
    for (const body of bodies) {
      const chunks = body.split("\n").filter((line) => line.startsWith("data: {"));
      expect(chunks.length).toBeGreaterThan(1);
      expect(body.trim().endsWith("data: [DONE]")).toBe(true);
    }
    const models = bodies.map(
      (body) =>
        JSON.parse(
          body
            .split("\n")
            .find((l) => l.startsWith("data: {"))!
            .slice(6),
        ).model,
    );
    expect(models.sort()).toEqual([made.modelCode!, "tiny-chat"].sort());
    await checkAccessibility("playground (compare)");
    await screenshot("playground-compare");

    await go("Models");
    await expect.poll(() => page.locator(`tr[data-model="${made.modelCode}"]`).count()).toBe(1);
    await checkAccessibility("models");
  });

  it("works at phone width: the nav and the playground fit 375 px", async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    const overflow = () =>
      page.evaluate(() => (globalThis as unknown as Browserish).document.scrollingElement.scrollWidth);
    await go("Files");
    expect(await overflow()).toBeLessThanOrEqual(375);
    await go("Playground");
    expect(await overflow()).toBeLessThanOrEqual(375);
    for (const name of ["Model", "Message"]) {
      const box = await page.getByRole(name === "Model" ? "combobox" : "textbox", { name }).boundingBox();
      expect(box, name).not.toBeNull();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(375);
    }
    const send = await page.getByRole("button", { name: "Send" }).boundingBox();
    expect(send!.x + send!.width).toBeLessThanOrEqual(375);
    await checkAccessibility("playground (375 px)");
    await screenshot("playground-375");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("shows another tenant none of it: empty lists, and the first tenant's job is not found", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await signIn(keyB);
    await go("Files");
    await expect.poll(() => page.getByText("No files yet.").isVisible()).toBe(true);
    expect(await page.getByRole("link", { name: "crlf.jsonl" }).count()).toBe(0);
    await go("Fine-tuning");
    await expect.poll(() => page.getByText("No jobs yet.").isVisible()).toBe(true);
    await go("Models");
    await expect
      .poll(() => page.getByText("No fine-tuned models yet", { exact: false }).isVisible())
      .toBe(true);
    expect(await page.getByText(made.modelCode!, { exact: true }).count()).toBe(0);
    await checkAccessibility("models (other tenant)");

    await page.goto(`${origin}/#/jobs/${made.jobId}`);
    await expect
      .poll(() => page.getByRole("alert").allTextContents(), { timeout: 30_000 })
      .toContain("No such job.");
    await checkAccessibility("job not found");
    await page.goto(`${origin}/#/files/${made.validFileId}`);
    await expect
      .poll(() => page.getByRole("alert").allTextContents(), { timeout: 30_000 })
      .toContain("No such file.");
  });

  it("ran every page under the console's CSP without a refused load or an uncaught error", () => {
    expect(pageErrors).toEqual([]);
  });
});
