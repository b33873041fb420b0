import { afterEach, describe, expect, it } from "vitest";
import { apiError, fakeApi, json, modelsFake, run } from "./fake-api.ts";

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function start(options: Parameters<typeof modelsFake>[0] = {}) {
  const api = await fakeApi(modelsFake(options));
  close = api.close;
  return api;
}

describe("ftctl models deploy", () => {
  it("POSTs the deploy and prints the status, tensor-parallel size and instance type", async () => {
    const api = await start();
    const result = await run(api.base, ["models", "deploy", "full-facts"]);
    expect(result.code).toBe(0);
    expect(api.seen.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /v4/models/full-facts/deploy"]);
    expect(result.out).toBe("full-facts: deploying (tp 1, m7i.large)");
    expect(result.err).toBe(
      "The server starts now; see it with 'ftctl models get full-facts' (or use --wait).",
    );
  });

  it("path-encodes the model code", async () => {
    const api = await start();
    const result = await run(api.base, ["models", "deploy", "a b/c?d"]);
    expect(api.seen[0]?.path).toBe("/v4/models/a%20b%2Fc%3Fd/deploy");
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      "error: The model 'a b/c?d' does not exist. (model_not_found, HTTP 404)\nrequest id: req-1",
    );
  });

  it("--wait polls the model until deployed, showing each status; exit 0", async () => {
    const api = await start({ pollsUntilDone: 2 });
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    expect(result.code).toBe(0);
    expect(api.seen.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /v4/models/full-facts/deploy",
      "GET /v4/models/full-facts",
      "GET /v4/models/full-facts",
    ]);
    expect(result.err).toBe("full-facts: deploying\nfull-facts: deployed");
    expect(result.out).toBe(
      'full-facts: deployed (tp 1, m7i.large)\nChat with it: ftctl chat full-facts "<prompt>"',
    );
    expect(result.progress).toBe("");
  });

  it("--wait polls at most every second", async () => {
    const api = await start({ pollsUntilDone: 1 });
    const slept: number[] = [];
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait"], {
      pollIntervalMs: 2000,
      sleep: async (ms) => void slept.push(ms),
    });
    expect(result.code).toBe(0);
    expect(slept).toEqual([1000]);
  });

  it("--wait redraws a waiting line on a TTY", async () => {
    const api = await start({ pollsUntilDone: 2 });
    const written: string[] = [];
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait"], {
      progress: { write: (text: string) => void written.push(text), isTTY: true },
    });
    expect(result.code).toBe(0);
    const text = written.join("").replace(/ {2}\d+ s/g, "  N s");
    expect(text).toBe(`${"\rfull-facts: deploying (tp 1, m7i.large)  N s\x1b[K".repeat(2)}\n`);
  });

  it("--wait on a failed deployment prints its reason; exit 1", async () => {
    const api = await start({ outcome: "failed", pollsUntilDone: 1 });
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    expect(result.code).toBe(1);
    expect(result.err).toBe("full-facts: deploying\nfull-facts: failed");
    expect(result.out).toBe(
      "full-facts: failed (tp 1, m7i.large): The server did not pass its health check within 900 seconds.",
    );
  });

  it("--wait on a deployment undeployed meanwhile; exit 1", async () => {
    const api = await start({ outcome: "undeployed" });
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    expect(result.code).toBe(1);
    expect(result.out).toBe(
      "full-facts: undeployed (tp 1, m7i.large)\nIt was undeployed before its server came up.",
    );
  });

  it("--wait --json prints only the final model object", async () => {
    const api = await start({ outcome: "failed" });
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait", "--json"]);
    expect(result.code).toBe(1);
    expect(result.err).toBe("");
    const model = JSON.parse(result.out) as { deployment: Record<string, unknown> };
    expect(model.deployment).toMatchObject({ status: "failed", failure_reason: expect.any(String) });
  });

  it("--wait rides out a failed poll; a 404 meanwhile ends it", async () => {
    const fake = modelsFake({ pollsUntilDone: 2 });
    let gets = 0;
    const api = await fakeApi((req, res, base) => {
      if (req.method === "GET" && ++gets === 1) return apiError(res, 503, "Try again", "service_unavailable");
      return fake(req, res, base);
    });
    close = api.close;
    const result = await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    expect(result.code).toBe(0);
    expect(result.err).toContain("(poll failed, retrying: Try again (service_unavailable, HTTP 503))");

    const gone = await fakeApi((req, res) =>
      req.method === "POST"
        ? json(res, 200, {
            id: "x",
            deployment: {
              status: "deploying",
              tensor_parallel_size: 2,
              instance_type: "g6e.12xlarge",
              deployed_at: null,
            },
          })
        : apiError(res, 404, "The model 'x' does not exist.", "model_not_found"),
    );
    const after = await run(gone.base, ["models", "deploy", "x", "--wait"]);
    await gone.close();
    expect(after.code).toBe(1);
    expect(after.err).toContain("error: The model 'x' does not exist. (model_not_found, HTTP 404)");
  });

  it("a deployment already live is answered as it is", async () => {
    const api = await start({ pollsUntilDone: 1 });
    await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    const again = await run(api.base, ["models", "deploy", "full-facts"]);
    expect(again.code).toBe(0);
    expect(again.out).toBe(
      'full-facts: deployed (tp 1, m7i.large)\nChat with it: ftctl chat full-facts "<prompt>"',
    );
    expect(again.err).toBe("");
  });

  it("prints the API's refusals precisely: LoRA and base 400, 404, 409, 429", async () => {
    const api = await start({ live: 2, limit: 2 });
    const cases: [string, string][] = [
      [
        "lora-facts",
        "error: 'lora-facts' is a LoRA model: it is served on its base model 'tiny-chat''s server and needs no deploy. Chat with it directly. (model_not_deployable, HTTP 400)",
      ],
      [
        "tiny-chat",
        "error: 'tiny-chat' is a base model: the platform serves it; it can not be deployed. (model_not_deployable, HTTP 400)",
      ],
      ["nope", "error: The model 'nope' does not exist. (model_not_found, HTTP 404)"],
      [
        "still-training",
        "error: The model 'still-training' is still training (job ftjob-1); deploy it once its job has succeeded. (model_not_ready, HTTP 409)",
      ],
      [
        "full-facts",
        "error: Your organization has 2 live deployments; the limit is 2 (deployments per tenant, set by the operator). Undeploy one with DELETE /v4/models/{code}/deploy, then retry. (quota_exceeded, HTTP 429)",
      ],
    ];
    for (const [code, message] of cases) {
      const result = await run(api.base, ["models", "deploy", code, "--wait"]);
      expect(result.code, code).toBe(1);
      expect(result.err, code).toBe(`${message}\nrequest id: req-1`);
      expect(result.out, code).toBe("");
    }
    // --wait never polled after a refusal.
    expect(api.seen.every((r) => r.method === "POST")).toBe(true);
  });

  it("usage errors exit 2 before any request", async () => {
    const api = await start();
    for (const argv of [
      ["models", "deploy"],
      ["models", "deploy", "a", "b"],
      ["models", "undeploy"],
    ]) {
      const result = await run(api.base, argv);
      expect(result.code, argv.join(" ")).toBe(2);
      expect(result.err).toMatch(/usage: ftctl models (un)?deploy <model code>/);
    }
    expect(api.seen).toHaveLength(0);
  });
});

describe("ftctl models undeploy, list and get", () => {
  it("undeploy DELETEs the deploy and prints the status", async () => {
    const api = await start({ pollsUntilDone: 1 });
    await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    const result = await run(api.base, ["models", "undeploy", "full-facts"]);
    expect(result.code).toBe(0);
    expect(api.seen.at(-1)).toMatchObject({ method: "DELETE", path: "/v4/models/full-facts/deploy" });
    expect(result.out).toBe("full-facts: undeployed");
    const lora = await run(api.base, ["models", "undeploy", "lora-facts"]);
    expect(lora.code).toBe(1);
    expect(lora.err).toContain("(model_not_deployable, HTTP 400)");
  });

  it("list and get show a full model's deployment; a LoRA model's line is unchanged", async () => {
    const api = await start({ pollsUntilDone: 1 });
    const before = (await run(api.base, ["models", "list"])).out.split("\n");
    expect(before).toEqual([
      "tiny-chat                     ft-platform",
      "lora-facts                    tn_1  status ready  base tiny-chat  ftjob-2",
      "full-facts                    tn_1  status ready  deployment undeployed  base tiny-chat  ftjob-1",
    ]);
    await run(api.base, ["models", "deploy", "full-facts", "--wait"]);
    const after = await run(api.base, ["models", "list"]);
    expect(after.out).toContain(
      "full-facts                    tn_1  status ready  deployment deployed (tp 1, m7i.large)  base tiny-chat  ftjob-1",
    );
    expect((await run(api.base, ["models", "get", "full-facts"])).out).toBe(
      "full-facts                    tn_1  status ready  deployment deployed (tp 1, m7i.large)  base tiny-chat  ftjob-1",
    );
    expect((await run(api.base, ["models", "get", "lora-facts"])).out).toBe(
      "lora-facts                    tn_1  status ready  base tiny-chat  ftjob-2",
    );
  });

  it("the help texts name deploy and undeploy", async () => {
    const api = await start();
    const models = await run(api.base, ["models", "--help"]);
    expect(models.code).toBe(0);
    expect(models.out).toContain(
      "ftctl models deploy <model code> [--wait]   a full-parameter model's own server; --wait until deployed",
    );
    expect(models.out).toContain(
      "ftctl models undeploy <model code>          release that server (chat with it stops at once)",
    );
    expect((await run(api.base, ["models", "deploy", "--help"])).out).toMatch(
      /^usage: ftctl models deploy <model code> \[--wait\]/,
    );
    expect(api.seen).toHaveLength(0);
  });
});
