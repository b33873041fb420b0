import { describe, expect, it } from "vitest";
import { PlatformError } from "../../../lambdas/core/errors.ts";
import { createJob } from "../../../lambdas/jobs-api/create-job.ts";
import { IdempotencyRaceUnresolvedError } from "../../../lambdas/jobs-api/errors.ts";
import { FakeQueue, fakeDependencies, InMemoryJobs, NOW, OTHER_TENANT, TENANT } from "./fakes.ts";

type Fakes = ReturnType<typeof fakeDependencies>;

const body = (trainingFile: string, overrides: Record<string, unknown> = {}) => ({
  model: "tiny-chat",
  training_file: trainingFile,
  method: { type: "lora", hyperparameters: { n_epochs: 1 } },
  model_code: "acme-bot",
  seed: 7,
  ...overrides,
});

/** Prepare: the fakes and one processed training file of TENANT. */
function setup() {
  const fakes = fakeDependencies();
  return { ...fakes, fileId: fakes.files.add(TENANT) };
}

async function created(fakes: Fakes, request: Record<string, unknown>, idempotencyKey?: string) {
  const result = await createJob(fakes.deps, { tenantId: TENANT, body: request, idempotencyKey });
  if (result.kind !== "job") throw new Error("expected a job");
  return result.job;
}

describe("createJob", () => {
  it("stores a queued job with its pending model and two events, and queues it for the dispatcher", async () => {
    const fakes = setup();
    const job = await created(fakes, body(fakes.fileId, { name: "Support bot" }));
    expect(job).toMatchObject({
      tenantId: TENANT,
      status: "queued",
      model: "tiny-chat",
      modelCode: "acme-bot",
      trainingFile: fakes.fileId,
      name: "Support bot",
      createdAt: NOW / 1000,
      batchJobId: null,
    });
    expect(await fakes.jobs.get(TENANT, job.jobId)).toEqual(job);
    expect(fakes.jobs.models.get("acme-bot")).toMatchObject({
      tenantId: TENANT,
      jobId: job.jobId,
      status: "pending",
      artifactUri: null,
      name: "Support bot",
    });
    expect(fakes.jobs.eventsOf(TENANT, job.jobId).map((e) => e.message)).toEqual([
      `Created fine-tuning job: ${job.jobId}`,
      expect.any(String),
    ]);
    expect(fakes.queue.sent).toEqual([{ tenantId: TENANT, jobId: job.jobId }]);
  });

  it("rejects a malformed request with a 400 naming the parameter, before reading any file", async () => {
    const fakes = setup();
    const cases: [Record<string, unknown>, { param: string | null; code: string }][] = [
      [
        { ...body(fakes.fileId), epochs: 3 },
        { param: "epochs", code: "unknown_parameter" },
      ],
      [{ model: "tiny-chat" }, { param: "training_file", code: "missing_required_parameter" }],
      [body(fakes.fileId, { model: "gpt-9" }), { param: "model", code: "model_not_found" }],
      [body(fakes.fileId, { model_code: "tiny-chat" }), { param: "model_code", code: expect.any(String) }],
    ];
    for (const [request, error] of cases) {
      await expect(createJob(fakes.deps, { tenantId: TENANT, body: request })).rejects.toMatchObject({
        status: 400,
        ...error,
      });
    }
    expect(fakes.jobs.jobs.size).toBe(0);
  });

  it("answers 400 file_not_found for an unknown file, a malformed id and another tenant's file", async () => {
    const fakes = setup();
    const foreign = fakes.files.add(OTHER_TENANT);
    for (const fileId of ["file-000000000000000000000", "../etc/passwd", foreign]) {
      await expect(created(fakes, body(fileId))).rejects.toMatchObject({
        status: 400,
        param: "training_file",
        code: "file_not_found",
      });
    }
    const validation = body(fakes.fileId, { validation_file: foreign });
    await expect(created(fakes, validation)).rejects.toMatchObject({
      param: "validation_file",
      code: "file_not_found",
    });
  });

  it("answers 400 file_not_processed for a file still being validated or one that failed validation", async () => {
    const fakes = setup();
    const uploading = fakes.files.add(TENANT, "uploaded");
    const failed = fakes.files.add(TENANT, "error");
    await expect(created(fakes, body(uploading))).rejects.toMatchObject({
      param: "training_file",
      code: "file_not_processed",
      message: expect.stringContaining("not processed yet (status 'uploaded')"),
    });
    await expect(created(fakes, body(fakes.fileId, { validation_file: failed }))).rejects.toMatchObject({
      param: "validation_file",
      code: "file_not_processed",
      message: expect.stringContaining("failed validation"),
    });
  });

  it("answers 400 invalid_file_format naming a preference (DPO) file given for supervised training", async () => {
    const fakes = setup();
    const pairs = fakes.files.addPreference(TENANT);
    await expect(created(fakes, body(pairs))).rejects.toMatchObject({
      status: 400,
      param: "training_file",
      code: "invalid_file_format",
      message: expect.stringContaining(`File ${pairs} holds preference (DPO) pairs`),
    });
    await expect(created(fakes, body(pairs))).rejects.toThrow(/method\.type "dpo"/);
    await expect(created(fakes, body(fakes.fileId, { validation_file: pairs }))).rejects.toMatchObject({
      param: "validation_file",
      code: "invalid_file_format",
    });
    expect(fakes.queue.sent).toEqual([]);
  });

  it("answers 400 invalid_file_purpose for a job's results file as training or validation file", async () => {
    const fakes = setup();
    const results = fakes.files.add(TENANT);
    fakes.files.update(TENANT, results, { purpose: "fine-tune-results", contentType: "text/csv" });
    await expect(created(fakes, body(results))).rejects.toMatchObject({
      status: 400,
      param: "training_file",
      code: "invalid_file_purpose",
      message: expect.stringContaining("purpose 'fine-tune-results'"),
    });
    await expect(created(fakes, body(fakes.fileId, { validation_file: results }))).rejects.toMatchObject({
      param: "validation_file",
      code: "invalid_file_purpose",
    });
    const dpo = body(fakes.files.addPreference(TENANT), {
      method: { type: "dpo" },
      validation_file: results,
    });
    await expect(created(fakes, dpo)).rejects.toMatchObject({
      param: "validation_file",
      code: "invalid_file_purpose",
    });
    expect(fakes.jobs.jobs.size).toBe(0);
  });

  it("answers 400 invalid_file when the file stops being processed before the job is written", async () => {
    const fakes = setup();
    fakes.jobs.beforeCreate = () => fakes.files.setStatus(TENANT, fakes.fileId, "error");
    await expect(created(fakes, body(fakes.fileId))).rejects.toMatchObject({
      status: 400,
      param: "training_file",
      code: "invalid_file",
    });
    expect(fakes.jobs.jobs.size).toBe(0);
    expect(fakes.queue.sent).toEqual([]);
  });

  it("answers 409 model_code_taken when any tenant's model has the code, and writes nothing", async () => {
    const fakes = setup();
    const other = fakes.files.add(OTHER_TENANT);
    await createJob(fakes.deps, { tenantId: OTHER_TENANT, body: body(other) });
    await expect(created(fakes, body(fakes.fileId))).rejects.toMatchObject({
      status: 409,
      param: "model_code",
      code: "model_code_taken",
    });
    expect([...fakes.jobs.jobs.values()].map((job) => job.tenantId)).toEqual([OTHER_TENANT]);
    expect(fakes.queue.sent).toHaveLength(1);
  });

  it("answers 503 queue_unavailable when the job can not be queued, and fails the job and its model", async () => {
    const fakes = setup();
    const failure = Object.assign(new Error("connect ECONNREFUSED"), { name: "NetworkingError" });
    fakes.queue.failure = failure;
    const error = await created(fakes, body(fakes.fileId)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlatformError);
    expect(error).toMatchObject({
      status: 503,
      code: "queue_unavailable",
      message: "The job could not be queued for training (NetworkingError); create it again.",
      cause: failure,
    });
    const [job] = fakes.jobs.jobs.values();
    expect(job).toMatchObject({ status: "failed", error: { code: "dispatch_failed" } });
    expect(fakes.jobs.models.get("acme-bot")?.status).toBe("failed");
  });

  describe("DPO", () => {
    const dpoBody = (trainingFile: string, overrides: Record<string, unknown> = {}) =>
      body(trainingFile, {
        method: { type: "dpo", dpo: { hyperparameters: { beta: 0.2, n_epochs: 1 } } },
        ...overrides,
      });

    /** A succeeded supervised LoRA job of `tenantId` and its ready model `code`. */
    async function sftModel(
      fakes: Fakes,
      code: string,
      tenantId = TENANT,
      model: Record<string, unknown> = {},
    ) {
      const result = await createJob(fakes.deps, {
        tenantId,
        body: body(fakes.files.add(tenantId), { model_code: code }),
      });
      if (result.kind !== "job") throw new Error("expected a job");
      const job = fakes.jobs.put({ ...result.job, status: "succeeded" }, { status: "ready", ...model });
      fakes.queue.sent.length = 0;
      return job;
    }

    it("stores a DPO job on preference pairs, its model marked dpo, and queues it", async () => {
      const fakes = setup();
      const pairs = fakes.files.addPreference(TENANT);
      const validation = fakes.files.addPreference(TENANT);
      const job = await created(fakes, dpoBody(pairs, { validation_file: validation }));
      expect(job).toMatchObject({
        status: "queued",
        model: "tiny-chat",
        objective: "dpo",
        method: "lora",
        hyperparameters: { beta: 0.2 },
        trainingFile: pairs,
        validationFile: validation,
      });
      expect(job).not.toHaveProperty("initModel");
      expect(fakes.jobs.models.get("acme-bot")).toMatchObject({ objective: "dpo", method: "lora" });
      expect(fakes.queue.sent).toEqual([{ tenantId: TENANT, jobId: job.jobId }]);
    });

    it("answers 400 invalid_file_format naming a supervised training or validation file", async () => {
      const fakes = setup();
      const pairs = fakes.files.addPreference(TENANT);
      await expect(created(fakes, dpoBody(fakes.fileId))).rejects.toMatchObject({
        status: 400,
        param: "training_file",
        code: "invalid_file_format",
        message: expect.stringContaining(`File ${fakes.fileId} does not hold preference pairs`),
      });
      await expect(created(fakes, dpoBody(pairs, { validation_file: fakes.fileId }))).rejects.toMatchObject({
        param: "validation_file",
        code: "invalid_file_format",
      });
      expect(fakes.jobs.jobs.size).toBe(0);
    });

    it("starts from the tenant's succeeded supervised model: its base and method, the parent recorded", async () => {
      const fakes = setup();
      const parent = await sftModel(fakes, "acme-sft");
      const job = await created(fakes, dpoBody(fakes.files.addPreference(TENANT), { model: "acme-sft" }));
      expect(job).toMatchObject({
        model: "tiny-chat",
        method: "lora",
        objective: "dpo",
        initModel: { modelCode: "acme-sft", jobId: parent.jobId, method: "lora" },
      });
      expect(fakes.jobs.models.get("acme-bot")).toMatchObject({ baseModel: "tiny-chat", objective: "dpo" });
    });

    it("answers model_not_found for another tenant's model code, exactly as for an unknown one", async () => {
      const fakes = setup();
      await sftModel(fakes, "their-sft", OTHER_TENANT);
      const pairs = fakes.files.addPreference(TENANT);
      const theirs = await created(fakes, dpoBody(pairs, { model: "their-sft" })).catch((e: unknown) => e);
      const unknown = await created(fakes, dpoBody(pairs, { model: "nobody-sft" })).catch((e: unknown) => e);
      expect(theirs).toMatchObject({ status: 400, param: "model", code: "model_not_found" });
      expect(unknown).toMatchObject({ status: 400, param: "model", code: "model_not_found" });
      expect((theirs as Error).message.replace("their-sft", "X")).toBe(
        (unknown as Error).message.replace("nobody-sft", "X"),
      );
    });

    it("answers 400 for a model whose job has not succeeded, and for a use_lora its method does not have", async () => {
      const fakes = setup();
      await sftModel(fakes, "acme-sft");
      await sftModel(fakes, "acme-pending", TENANT, { status: "pending" });
      const pairs = fakes.files.addPreference(TENANT);
      await expect(created(fakes, dpoBody(pairs, { model: "acme-pending" }))).rejects.toMatchObject({
        param: "model",
        code: "model_not_ready",
      });
      const full = { model: "acme-sft", method: { type: "dpo", dpo: { use_lora: false } } };
      await expect(created(fakes, body(pairs, full))).rejects.toMatchObject({
        param: "method.dpo.use_lora",
        code: "unsupported_method",
        message: expect.stringContaining("use_lora must be true"),
      });
    });

    it("keeps a supervised job from starting from a fine-tuned model: model_not_found, as before", async () => {
      const fakes = setup();
      await sftModel(fakes, "acme-sft");
      await expect(
        created(fakes, body(fakes.fileId, { model: "acme-sft", model_code: "acme-sft-2" })),
      ).rejects.toMatchObject({ status: 400, param: "model", code: "model_not_found" });
    });

    it("answers a dry run with DPO's estimate: two sequences per pair", async () => {
      const fakes = setup();
      const result = await createJob(fakes.deps, {
        tenantId: TENANT,
        body: dpoBody(fakes.files.addPreference(TENANT), { dry_run: true }),
      });
      expect(result.kind === "estimate" && result.estimate).toMatchObject({
        objective: "dpo",
        method: "lora",
        // 2 × 3,000 counted tokens − 2,000 output tokens (the prompts twice), one epoch.
        trained_tokens: 4_000,
        assumptions: { sequences_per_example: 2 },
      });
      expect(fakes.jobs.jobs.size).toBe(0);
    });
  });

  describe("dry run", () => {
    it("answers the estimate with the model code and the queue's depth, and writes nothing", async () => {
      const fakes = setup();
      fakes.queue.waiting = 4;
      const result = await createJob(fakes.deps, {
        tenantId: TENANT,
        body: body(fakes.fileId, { dry_run: true }),
      });
      expect(result.kind).toBe("estimate");
      expect(result.kind === "estimate" && result.estimate).toMatchObject({
        object: "fine_tuning.job.estimate",
        model: "tiny-chat",
        method: "lora",
        model_code: "acme-bot",
        queue_position: 5,
      });
      expect(fakes.jobs.jobs.size + fakes.jobs.models.size + fakes.queue.sent.length).toBe(0);
    });

    it("sizes max_seq_length on a tokenizer's count of the longest example, never on an estimate", async () => {
      const fakes = setup();
      const counted = fakes.files.add(TENANT, "processed", {
        examples: 10,
        tokens: { total: 900, max: 100, method: "tokenizer:tiny" },
      });
      const estimated = fakes.files.add(TENANT, "processed", {
        examples: 10,
        tokens: { total: 900, max: 100, method: "estimate:utf8-bytes/4" },
      });
      const sequence = async (fileId: string) =>
        (await created(fakes, body(fileId, { model_code: undefined }))).hyperparameters.max_seq_length;
      expect(await sequence(counted)).toBe(128);
      expect(await sequence(estimated)).toBe(512);
    });

    it("plans on no statistics, or unreadable ones, as on an unmeasured file", async () => {
      const fakes = setup();
      const none = fakes.files.add(TENANT, "processed", {});
      const garbage = fakes.files.add(TENANT, "processed", { examples: "ten", tokens: "many" });
      for (const fileId of [none, garbage]) {
        const job = await created(fakes, body(fileId, { model_code: undefined }));
        expect(job.hyperparameters.max_seq_length).toBe(512);
      }
    });
  });

  describe("Idempotency-Key", () => {
    it("replays the job of an earlier request with the same key and body, writing nothing new", async () => {
      const fakes = setup();
      const first = await created(fakes, body(fakes.fileId), "key-1");
      // The same body with its keys in another order is the same request.
      const { seed, ...rest } = body(fakes.fileId);
      const again = await created(fakes, { seed, ...rest }, "key-1");
      expect(again).toEqual(first);
      expect(fakes.jobs.jobs.size).toBe(1);
      expect(fakes.queue.sent).toHaveLength(1);
      expect(fakes.jobs.keys.get(`${TENANT}#key-1`)).toEqual({
        id: `${TENANT}#key-1`,
        requestHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        jobId: first.jobId,
        expiration: NOW / 1000 + 24 * 3600,
      });
    });

    it("answers 422 idempotency_key_reused for the same key with another body", async () => {
      const fakes = setup();
      await created(fakes, body(fakes.fileId), "key-1");
      await expect(
        created(fakes, body(fakes.fileId, { model_code: "acme-bot-2" }), "key-1"),
      ).rejects.toMatchObject({
        status: 422,
        code: "idempotency_key_reused",
      });
    });

    it("answers 422 when the job the key made has been deleted", async () => {
      const fakes = setup();
      const first = await created(fakes, body(fakes.fileId), "key-1");
      fakes.jobs.jobs.clear();
      await expect(created(fakes, body(fakes.fileId), "key-1")).rejects.toMatchObject({
        status: 422,
        code: "idempotency_key_reused",
        message: expect.stringContaining(first.jobId),
      });
    });

    it("creates a new job once the key has expired", async () => {
      const fakes = setup();
      const first = await created(fakes, body(fakes.fileId), "key-1");
      // Expired, and not yet removed by the table's TTL.
      fakes.jobs.keys.set(`${TENANT}#key-1`, { ...fakes.jobs.keys.get(`${TENANT}#key-1`)!, expiration: 1 });
      const second = await created(fakes, body(fakes.fileId, { model_code: "acme-bot-2" }), "key-1");
      expect(second.jobId).not.toBe(first.jobId);
    });

    it("keeps keys per tenant: another tenant's request with the same key makes its own job", async () => {
      const fakes = setup();
      const mine = await created(fakes, body(fakes.fileId), "shared");
      const other = fakes.files.add(OTHER_TENANT);
      const theirs = await createJob(fakes.deps, {
        tenantId: OTHER_TENANT,
        body: body(other, { model_code: "their-bot" }),
        idempotencyKey: "shared",
      });
      expect(theirs.kind === "job" && theirs.job.jobId).not.toBe(mine.jobId);
    });

    it("answers 400 invalid_idempotency_key for a key with spaces or over 255 characters", async () => {
      const fakes = setup();
      for (const bad of ["has space", "", "k".repeat(256)]) {
        await expect(created(fakes, body(fakes.fileId), bad)).rejects.toMatchObject({
          status: 400,
          param: "Idempotency-Key",
          code: "invalid_idempotency_key",
        });
      }
    });

    it("does not replay a dry run: it answers the estimate", async () => {
      const fakes = setup();
      await created(fakes, body(fakes.fileId), "key-1");
      const dry = await createJob(fakes.deps, {
        tenantId: TENANT,
        body: body(fakes.fileId, { dry_run: true }),
        idempotencyKey: "key-1",
      });
      expect(dry.kind).toBe("estimate");
    });

    describe("when a concurrent request with the same key commits first", () => {
      /** The winner's job and key record, written inside the loser's transaction. */
      async function race(fakes: Fakes, winnerBody: Record<string, unknown>) {
        const winner = {
          ...fakes,
          deps: { ...fakes.deps, jobs: new InMemoryJobs(fakes.files), queue: new FakeQueue() },
        };
        const job = await created(winner, winnerBody, "key-1");
        const record = (await winner.deps.jobs.getIdempotency(`${TENANT}#key-1`))!;
        fakes.jobs.beforeCreate = () => {
          fakes.jobs.put(job);
          fakes.jobs.keys.set(record.id, record);
        };
        return job;
      }

      it("answers the winner's job, and neither writes nor queues its own", async () => {
        const fakes = setup();
        // The same body: the winner holds the model code too.
        const job = await race(fakes, body(fakes.fileId));
        const answer = await created(fakes, body(fakes.fileId), "key-1");
        expect(answer).toEqual(job);
        expect([...fakes.jobs.jobs.values()]).toEqual([job]);
        expect(fakes.queue.sent).toEqual([]);
      });

      it("answers 422 when the winner sent another body", async () => {
        const fakes = setup();
        await race(fakes, body(fakes.fileId, { model_code: "winner-bot" }));
        await expect(created(fakes, body(fakes.fileId), "key-1")).rejects.toMatchObject({
          status: 422,
          code: "idempotency_key_reused",
        });
      });

      it("fails with an Error (a 500) when the winner's key record can not be read back", async () => {
        const fakes = setup();
        await race(fakes, body(fakes.fileId));
        fakes.jobs.getIdempotency = async () => undefined;
        const error = await created(fakes, body(fakes.fileId), "key-1").catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IdempotencyRaceUnresolvedError);
        expect(error).not.toBeInstanceOf(PlatformError);
      });
    });
  });
});

describe("createJob under the concurrent-jobs quota", () => {
  it("answers 429 quota_exceeded when the tenant's unfinished jobs reach the quota, and writes nothing", async () => {
    const fakes = setup();
    fakes.quotaSettings.defaults = { ...fakes.quotaSettings.defaults, concurrentJobs: 1 };
    await created(fakes, body(fakes.fileId, { model_code: "first" }));
    const refused = createJob(fakes.deps, {
      tenantId: TENANT,
      body: body(fakes.fileId, { model_code: "second" }),
    });
    await expect(refused).rejects.toMatchObject({ status: 429, code: "quota_exceeded" });
    await expect(refused).rejects.toThrow(/limit is 1 \(concurrent jobs per tenant/);
    expect(fakes.jobs.models.has("second")).toBe(false);
    expect(fakes.queue.sent).toHaveLength(1);
  });

  it("does not count a dry run, nor refuse one at the limit", async () => {
    const fakes = setup();
    fakes.quotaSettings.defaults = { ...fakes.quotaSettings.defaults, concurrentJobs: 1 };
    await created(fakes, body(fakes.fileId, { model_code: "first" }));
    const dry = await createJob(fakes.deps, {
      tenantId: TENANT,
      body: body(fakes.fileId, { model_code: "second", dry_run: true }),
    });
    expect(dry.kind).toBe("estimate");
  });

  it("counts only unfinished jobs of the tenant, and lets a per-tenant override lift the default", async () => {
    const fakes = setup();
    fakes.quotaSettings.defaults = { ...fakes.quotaSettings.defaults, concurrentJobs: 1 };
    const first = await created(fakes, body(fakes.fileId, { model_code: "first" }));
    // Another tenant's job does not count against this one.
    await expect(
      createJob(fakes.deps, {
        tenantId: OTHER_TENANT,
        body: body(fakes.files.add(OTHER_TENANT), { model_code: "other" }),
      }),
    ).resolves.toMatchObject({ kind: "job" });
    fakes.quotaSettings.overrides.set(TENANT, { concurrentJobs: 2 });
    await created(fakes, body(fakes.fileId, { model_code: "second" }));
    await expect(created(fakes, body(fakes.fileId, { model_code: "third" }))).rejects.toMatchObject({
      code: "quota_exceeded",
    });
    // A finished job frees its place.
    fakes.jobs.put({ ...first, status: "succeeded" });
    await expect(created(fakes, body(fakes.fileId, { model_code: "third" }))).resolves.toMatchObject({
      status: "queued",
    });
  });
});
