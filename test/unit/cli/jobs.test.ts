import { afterEach, describe, expect, it } from "vitest";
import { apiError, fakeApi, json, run } from "./fake-api.ts";

const job = (status: string, over: Record<string, unknown> = {}) => ({
  id: "ftjob-1",
  object: "fine_tuning.job",
  model: "tiny-chat",
  status,
  model_code: "zorbia-facts",
  fine_tuned_model: status === "succeeded" ? "zorbia-facts" : null,
  training_file: "file-1",
  error: null,
  ...over,
});

let eventCounter = 0;
const event = (message: string, type = "message", data: Record<string, unknown> | null = null) => ({
  id: `ftevent-${String(++eventCounter).padStart(3, "0")}`,
  object: "fine_tuning.job.event",
  created_at: 1_700_000_000 + eventCounter,
  level: "info",
  message,
  type,
  data,
});

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe("ftctl jobs create", () => {
  it("sends the body shape with an Idempotency-Key and prints the job", async () => {
    const api = await fakeApi((_req, res) => json(res, 200, job("validating_files")));
    close = api.close;
    const result = await run(api.base, [
      "jobs",
      "create",
      "--model",
      "tiny-chat",
      "--training-file",
      "file-1",
      "--validation-file",
      "file-2",
      "--method",
      "lora",
      "--model-code",
      "zorbia-facts",
      "--epochs",
      "30",
      "--batch-size",
      "auto",
      "--learning-rate-multiplier",
      "2.5",
      "--lora-r",
      "16",
    ]);
    expect(result.code).toBe(0);
    const [post] = api.seen;
    expect(post?.method).toBe("POST");
    expect(post?.path).toBe("/v4/fine_tuning/jobs");
    expect(post?.headers["idempotency-key"]).toBe("idem-fixed");
    expect(post?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(post!.body.toString())).toEqual({
      model: "tiny-chat",
      training_file: "file-1",
      validation_file: "file-2",
      method: {
        type: "lora",
        hyperparameters: { n_epochs: 30, batch_size: "auto", learning_rate_multiplier: 2.5, lora_r: 16 },
      },
      model_code: "zorbia-facts",
    });
    expect(result.out).toContain("Created ftjob-1: status validating_files, model code zorbia-facts.");
  });

  it("--dry-run and --suffix: dry_run in the body, the estimate printed; --idempotency-key is kept", async () => {
    const api = await fakeApi((_req, res) =>
      json(res, 200, {
        object: "fine_tuning.job.estimate",
        model: "tiny-chat",
        method: "full",
        trained_tokens: 5400,
        estimated_cost_usd: 0.0054,
        estimated_duration_seconds: 183,
        queue_position: 1,
        hyperparameters: { n_epochs: 3 },
        assumptions: { device: "CPU", gpus: 0, instance_type: "m7i.large" },
      }),
    );
    close = api.close;
    const result = await run(api.base, [
      "jobs",
      "create",
      "--model=tiny-chat",
      "--training-file=file-1",
      "--suffix=demo",
      "--dry-run",
      "--idempotency-key=k1",
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(api.seen[0]!.body.toString())).toEqual({
      model: "tiny-chat",
      training_file: "file-1",
      suffix: "demo",
      dry_run: true,
    });
    expect(api.seen[0]?.headers["idempotency-key"]).toBe("k1");
    expect(result.out).toContain("trained tokens      5400");
    expect(result.out).toContain("3 min 3 s (CPU, 0 GPUs, m7i.large)");
  });

  it("hyperparameters without --method go top-level; usage errors exit 2 before any request", async () => {
    const api = await fakeApi((_req, res) => json(res, 200, job("queued")));
    close = api.close;
    await run(api.base, ["jobs", "create", "--model", "m", "--training-file", "f", "--epochs", "2"]);
    expect(JSON.parse(api.seen[0]!.body.toString())).toEqual({
      model: "m",
      training_file: "f",
      hyperparameters: { n_epochs: 2 },
    });
    const bad = [
      ["jobs", "create", "--training-file", "f"],
      ["jobs", "create", "--model", "m", "--training-file", "f", "--method", "dpo"],
      ["jobs", "create", "--model", "m", "--training-file", "f", "--model-code", "a", "--suffix", "b"],
      ["jobs", "create", "--model", "m", "--training-file", "f", "--epochs", "many"],
      ["jobs", "create", "--model", "m", "--training-file", "f", "--no-such-flag"],
    ];
    for (const argv of bad) {
      const result = await run(api.base, argv);
      expect(result.code, argv.join(" ")).toBe(2);
      expect(result.err).toContain("usage: ftctl jobs create");
    }
    expect(api.seen).toHaveLength(1);
  });
});

describe("ftctl jobs follow", () => {
  /** A job that runs through `statuses`, one per poll, emitting the given new events at each poll. */
  function scripted(statuses: string[], eventsPerPoll: ReturnType<typeof event>[][], over = {}) {
    let poll = -1;
    const all: ReturnType<typeof event>[] = [];
    return fakeApi((req, res) => {
      if (req.path.endsWith("/events")) {
        expect(req.query.get("limit")).toBe("100");
        all.push(...(eventsPerPoll[poll] ?? []));
        return json(res, 200, { object: "list", data: [...all].reverse(), has_more: false });
      }
      poll++;
      json(res, 200, job(statuses[Math.min(poll, statuses.length - 1)]!, over));
    });
  }

  it("prints status changes, messages in order and the loss; exits 0 on succeeded", async () => {
    const api = await scripted(
      ["queued", "running", "running", "succeeded"],
      [
        [event("Job created"), event("Files validated")],
        [event("Training started"), event("step", "metrics", { step: 1, train_loss: 3.5, total_steps: 10 })],
        [
          event("step", "metrics", {
            step: 5,
            train_loss: 2.25,
            total_steps: 10,
            epoch: 1,
            eta_seconds: 65.4,
          }),
          event("step", "metrics", { step: 10, train_loss: 1.125, total_steps: 10, eta_seconds: 0 }),
          event("Training finished"),
        ],
        [event("Job succeeded")],
      ],
    );
    close = api.close;
    const result = await run(api.base, ["jobs", "follow", "ftjob-1"]);
    expect(result.code).toBe(0);
    const lines = result.out.split("\n").map((l) => l.replace(/^\d\d:\d\d:\d\d {2}/, ""));
    expect(lines).toEqual([
      "Job created",
      "Files validated",
      "status: queued",
      "Training started",
      "step 1/10  train_loss 3.5000",
      "status: running",
      "step 10/10  train_loss 1.1250",
      "Training finished",
      "Job succeeded",
      "status: succeeded",
      "Job ftjob-1 succeeded. Model code: zorbia-facts",
      'Chat with it: ftctl chat zorbia-facts "<prompt>"',
    ]);
  });

  it("redraws the loss line on a TTY", async () => {
    const api = await scripted(
      ["running", "failed"],
      [
        [
          event("step", "metrics", { step: 1, train_loss: 3 }),
          event("step", "metrics", { step: 2, train_loss: 2, epoch: 1, eta_seconds: 65.4 }),
        ],
        [event("step", "metrics", { step: 3, train_loss: 1.5 }), event("Out of memory")],
      ],
      { error: { message: "The trainer ran out of memory.", code: "trainer_failed" } },
    );
    close = api.close;
    const result = await run(api.base, ["jobs", "follow", "ftjob-1"], { stdoutIsTTY: true });
    expect(result.code).toBe(1);
    expect(result.written).toBe(
      // The status line after the first poll ends the loss line; the second poll draws a new one.
      "\rstep 2  epoch 1  train_loss 2.0000  eta 1m05s\x1b[K\n\rstep 3  train_loss 1.5000\x1b[K\n",
    );
    expect(result.out).toContain("status: running\n");
    expect(result.out).toContain(
      "Job ftjob-1 failed: The trainer ran out of memory. (trainer_failed). Model code zorbia-facts is not usable.",
    );
  });

  it("pages back through more than 100 new events between two polls", async () => {
    const all = [event("event 0")];
    let poll = 0;
    const api = await fakeApi((req, res) => {
      if (req.path.endsWith("/events")) {
        const newestFirst = [...all].reverse();
        const after = req.query.get("after");
        const start = after ? newestFirst.findIndex((e) => e.id === after) + 1 : 0;
        const data = newestFirst.slice(start, start + 100);
        return json(res, 200, { object: "list", data, has_more: start + 100 < newestFirst.length });
      }
      if (++poll === 2) for (let i = 1; i <= 250; i++) all.push(event(`event ${i}`));
      json(res, 200, job(poll < 3 ? "running" : "succeeded"));
    });
    close = api.close;
    const result = await run(api.base, ["jobs", "follow", "ftjob-1"]);
    expect(result.code).toBe(0);
    const events = result.out.split("\n").filter((l) => / {2}event \d+$/.test(l));
    expect(events.map((l) => l.replace(/^.* {2}/, ""))).toEqual(
      Array.from({ length: 251 }, (_, i) => `event ${i}`),
    );
    expect(api.seen.filter((r) => r.query.get("after")).length).toBe(2);
  });

  it("exits 1 on cancelled and rides out a 502", async () => {
    let polls = 0;
    const api = await fakeApi((req, res) => {
      if (req.path.endsWith("/events")) return json(res, 200, { object: "list", data: [], has_more: false });
      polls++;
      if (polls === 1) return apiError(res, 502, "Bad gateway", "upstream_error");
      json(res, 200, job("cancelled"));
    });
    close = api.close;
    const result = await run(api.base, ["jobs", "follow", "ftjob-1"]);
    expect(result.code).toBe(1);
    expect(result.out).toContain("(poll failed, retrying: Bad gateway (upstream_error, HTTP 502))");
    expect(result.out).toContain("Job ftjob-1 cancelled.");
  });

  it("ends follow when the job is paused, saying how to resume it", async () => {
    const api = await fakeApi((req, res) => {
      if (req.path.endsWith("/events")) return json(res, 200, { object: "list", data: [], has_more: false });
      json(res, 200, job("paused"));
    });
    close = api.close;
    const result = await run(api.base, ["jobs", "follow", "ftjob-1"]);
    expect(result.code).toBe(1);
    expect(result.out).toContain("status: paused");
    expect(result.out).toContain("Job ftjob-1 paused. Resume it with: ftctl jobs resume ftjob-1");
  });

  it("pauses and resumes a job, and shows a 409 in the error envelope", async () => {
    const api = await fakeApi((req, res) => {
      if (req.path === "/v4/fine_tuning/jobs/ftjob-1/pause") return json(res, 200, job("paused"));
      if (req.path === "/v4/fine_tuning/jobs/ftjob-1/resume") return json(res, 200, job("queued"));
      apiError(res, 409, "The job has already succeeded and can not be paused.", "job_not_pausable");
    });
    close = api.close;
    expect((await run(api.base, ["jobs", "pause", "ftjob-1"])).out).toBe("ftjob-1: paused");
    expect(api.seen.at(-1)).toMatchObject({ method: "POST", path: "/v4/fine_tuning/jobs/ftjob-1/pause" });
    expect((await run(api.base, ["jobs", "resume", "ftjob-1"])).out).toBe("ftjob-1: queued");
    expect(api.seen.at(-1)).toMatchObject({ method: "POST", path: "/v4/fine_tuning/jobs/ftjob-1/resume" });
    expect((await run(api.base, ["jobs", "resume", "ftjob-1", "--json"])).out).toContain(
      '"status": "queued"',
    );
    const refused = await run(api.base, ["jobs", "pause", "ftjob-2"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("(job_not_pausable, HTTP 409)");
    expect((await run(api.base, ["jobs", "pause"])).err).toContain("usage: ftctl jobs pause <job id>");
  });

  it("a 404 ends follow at once with the envelope", async () => {
    const api = await fakeApi((_req, res) => apiError(res, 404, "No such job: ftjob-9", "job_not_found"));
    close = api.close;
    const result = await run(api.base, ["jobs", "follow", "ftjob-9"]);
    expect(result.code).toBe(1);
    expect(result.err).toContain("error: No such job: ftjob-9 (job_not_found, HTTP 404)");
  });
});

describe("ftctl jobs and models, the rest", () => {
  it("list, get, cancel, events; models list, get, delete", async () => {
    const api = await fakeApi((req, res) => {
      if (req.path === "/v4/fine_tuning/jobs")
        return json(res, 200, { object: "list", data: [job("running")], has_more: false });
      if (req.path.endsWith("/cancel")) return json(res, 200, job("cancelled"));
      if (req.path.endsWith("/events"))
        return json(res, 200, { object: "list", data: [event("second"), event("first")], has_more: false });
      if (req.path === "/v4/models")
        return json(res, 200, {
          object: "list",
          data: [
            { id: "tiny-chat", object: "model", owned_by: "ft-platform" },
            { id: "zorbia-facts", object: "model", owned_by: "tn_1", root: "tiny-chat", status: "ready" },
          ],
          has_more: false,
        });
      if (req.method === "DELETE")
        return json(res, 200, { id: "zorbia-facts", object: "model", deleted: true });
      if (req.path.startsWith("/v4/models/")) return json(res, 200, { id: "zorbia-facts", status: "ready" });
      json(
        res,
        200,
        job("running", { method: { type: "lora", hyperparameters: { n_epochs: 3, lora_r: null } } }),
      );
    });
    close = api.close;
    expect((await run(api.base, ["jobs", "list"])).out).toMatch(
      /^ftjob-1 {2}running +tiny-chat {2}zorbia-facts$/,
    );
    expect((await run(api.base, ["jobs", "get", "ftjob-1"])).out).toMatch(/hyperparameters n_epochs=3$/m);
    expect((await run(api.base, ["jobs", "cancel", "ftjob-1"])).out).toBe("ftjob-1: cancelled");
    expect(api.seen.at(-1)?.method).toBe("POST");
    const events = (await run(api.base, ["jobs", "events", "ftjob-1"])).out.split("\n");
    expect(events.map((l) => l.slice(10))).toEqual(["first", "second"]);
    const models = await run(api.base, ["models", "list"]);
    expect(models.out).toContain("zorbia-facts");
    expect(models.out).toContain("status ready  base tiny-chat");
    expect((await run(api.base, ["models", "get", "zorbia-facts", "--json"])).out).toContain(
      '"status": "ready"',
    );
    expect((await run(api.base, ["models", "delete", "zorbia-facts"])).out).toBe("Deleted zorbia-facts.");
    expect(api.seen.at(-1)?.path).toBe("/v4/models/zorbia-facts");
  });
  it("jobs delete, models rename, and --name on create", async () => {
    const api = await fakeApi((req, res) => {
      if (req.method === "DELETE") return json(res, 200, { ...job("succeeded"), deleted: true });
      if (req.path === "/v4/models/zorbia-facts") {
        const { name } = JSON.parse(req.body.toString()) as { name: string | null };
        return json(res, 200, { id: "zorbia-facts", object: "model", status: "ready", name });
      }
      json(res, 200, job("queued", { name: "客服助手" }));
    });
    close = api.close;
    const deleted = await run(api.base, ["jobs", "delete", "ftjob-1"]);
    expect(deleted.out).toBe("Deleted ftjob-1. Its model zorbia-facts stays.");
    expect(api.seen.at(-1)).toMatchObject({ method: "DELETE", path: "/v4/fine_tuning/jobs/ftjob-1" });
    const renamed = await run(api.base, ["models", "rename", "zorbia-facts", "客服助手 v2"]);
    expect(renamed.out).toContain('"客服助手 v2"');
    expect(JSON.parse(api.seen.at(-1)!.body.toString())).toEqual({ name: "客服助手 v2" });
    await run(api.base, ["models", "rename", "zorbia-facts", ""]);
    expect(JSON.parse(api.seen.at(-1)!.body.toString())).toEqual({ name: null });
    expect((await run(api.base, ["models", "rename", "zorbia-facts"])).code).toBe(2);
    await run(api.base, [
      "jobs",
      "create",
      "--model",
      "tiny-chat",
      "--training-file",
      "file-1",
      "--model-code",
      "chatglm3-6b-1001",
      "--name",
      "客服助手",
    ]);
    expect(JSON.parse(api.seen.at(-1)!.body.toString())).toMatchObject({
      model_code: "chatglm3-6b-1001",
      name: "客服助手",
    });
  });
});
