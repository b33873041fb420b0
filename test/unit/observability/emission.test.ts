import { describe, expect, it } from "vitest";
import type { ChatSample, JobOutcomeSample } from "../../../lambdas/aws/observability.ts";
import type { ChatSink } from "../../../lambdas/chat/relay.ts";
import { serveChat } from "../../../lambdas/chat/service.ts";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import { parseCreateJobRequest, planJob } from "../../../lambdas/core/jobs/create-request.ts";
import type { JobStatus } from "../../../lambdas/core/jobs/state-machine.ts";
import { type JobRecord, newJobRecord } from "../../../lambdas/core/jobs/wire.ts";
import { type DispatchDependencies, dispatchJob } from "../../../lambdas/dispatcher/dispatch.ts";
import { applyBatchStateChange, type StatusDependencies } from "../../../lambdas/job-status/apply.ts";
import { chatDeps } from "../chat/harness.ts";

/**
 * Where each metric is measured: the handlers' services hand a sample to their `record…` hook, which
 * the handler wires to the observability module (tested in metrics.test.ts).
 */

const TENANT = "tn_0123456789abcdef";
const JOB = "ftjob-001k892a2fse5r8e5481r";

/** A job as the jobs API creates it (the domain's own constructor), in `status`. */
function job(status: JobStatus, extra: Partial<JobRecord> = {}): JobRecord {
  const request = parseCreateJobRequest({ model: "tiny-chat", training_file: "file-001k892a2fse5r8e5481r" });
  const plan = planJob(request, { jobId: JOB, dataset: { examples: 100 } });
  const created = newJobRecord({ tenantId: TENANT, jobId: JOB, createdAt: 1_700_000_000, request, plan });
  return { ...created, status, batchJobId: "batch-1", ...extra };
}

describe("job outcomes", () => {
  function statusDeps(current: JobRecord) {
    const samples: JobOutcomeSample[] = [];
    const deps: StatusDependencies = {
      jobs: {
        get: async () => current,
        applyTransition: async () => true,
        latestErrorEvent: async () => undefined,
      },
      artifacts: {
        bucket: "artifacts",
        getJson: async () => ({ trained_tokens: 1200 }),
        head: async () => undefined,
      },
      resultFiles: { datasets: { copyFrom: async () => {} }, files: { createIfAbsent: async () => true } },
      recordOutcome: (sample) => samples.push(sample),
    };
    return { deps, samples };
  }
  const change = (status: string, extra: Record<string, unknown> = {}) => ({
    jobId: "batch-1",
    jobName: JOB,
    status,
    parameters: { tenantId: TENANT, jobId: JOB },
    ...extra,
  });

  it("counts a run that succeeded, and one that failed, with the job's method", async () => {
    const succeeded = statusDeps(job("running"));
    await expect(applyBatchStateChange(change("SUCCEEDED"), succeeded.deps)).resolves.toBe("applied");
    expect(succeeded.samples).toEqual([{ outcome: "succeeded", method: "lora" }]);

    const failed = statusDeps(job("running", { method: "full" }));
    const detail = change("FAILED", { attempts: [{ container: { exitCode: 3 } }] });
    await expect(applyBatchStateChange(detail, failed.deps)).resolves.toBe("applied");
    expect(failed.samples).toEqual([{ outcome: "failed", method: "full" }]);
  });

  it("counts nothing for a run that starts, a repeated event, or a late one after a cancel", async () => {
    for (const [status, event] of [
      ["queued", "RUNNING"],
      ["succeeded", "SUCCEEDED"],
      ["cancelled", "FAILED"],
    ] as const) {
      const { deps, samples } = statusDeps(job(status));
      await applyBatchStateChange(change(event), deps);
      expect(samples).toEqual([]);
    }
  });

  it("counts a job the dispatcher fails on the last delivery, which never reaches Batch", async () => {
    const samples: JobOutcomeSample[] = [];
    const deps: DispatchDependencies = {
      jobs: {
        get: async () => job("queued", { batchJobId: null }),
        claimDispatch: async () => true,
        applyTransition: async () => true,
      },
      runner: {
        submit: async () => {
          throw new Error("no such job queue");
        },
        terminate: async () => {},
      },
      catalog: DEFAULT_CATALOG,
      locations: { datasetsBucket: "d", artifactsBucket: "a", jobsTable: "j", eventsTable: "e" },
      log: () => {},
      recordOutcome: (sample) => samples.push(sample),
    };
    const message = { tenantId: TENANT, jobId: JOB };

    await expect(dispatchJob(message, deps, { last: false })).rejects.toThrow(/no such job queue/);
    expect(samples).toEqual([]);
    await expect(dispatchJob(message, deps, { last: true })).resolves.toBe("failed");
    expect(samples).toEqual([{ outcome: "failed", method: "lora" }]);
  });
});

describe("chat metrics", () => {
  const UPSTREAM = "http://inference.test/v1";

  /** A sink that keeps what was written; the clock is moved by the fake upstream. */
  function memorySink(): ChatSink & { readonly body: () => string } {
    const parts: string[] = [];
    return {
      signal: new AbortController().signal,
      start: () => {},
      write: (chunk) => {
        parts.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      },
      end: () => {},
      body: () => parts.join(""),
    };
  }

  /** An inference server that answers after `delayMs` of the test clock, streamed or whole. */
  function upstream(clock: { t: number }, delayMs: number): typeof fetch {
    const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
    return async (_url, init) => {
      clock.t += delayMs;
      const body = JSON.parse(String(init?.body)) as { stream?: boolean };
      const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };
      if (!body.stream) {
        const completion = {
          id: "c",
          object: "chat.completion",
          created: 1,
          model: "m",
          choices: [{ index: 0, message: { role: "assistant", content: "Hi!" }, finish_reason: "stop" }],
          usage,
        };
        return new Response(JSON.stringify(completion), { headers: { "content-type": "application/json" } });
      }
      const sse = [
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Hi!" }),
        `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [], usage })}\n\n`,
        "data: [DONE]\n\n",
      ].join("");
      return new Response(sse, { headers: { "content-type": "text/event-stream" } });
    };
  }

  async function chat(stream: boolean) {
    const clock = { t: 1_000 };
    const samples: ChatSample[] = [];
    const deps = chatDeps(UPSTREAM, {
      fetch: upstream(clock, 250),
      now: () => clock.t,
      recordChat: (sample) => samples.push(sample),
    });
    const sink = memorySink();
    await serveChat(
      {
        tenantId: "tn_a",
        requestId: "req-1",
        method: "POST",
        path: "/v4/chat/completions",
        headers: { "content-type": "application/json" },
        body: Buffer.from(
          JSON.stringify({ model: "acme-support-v1", messages: [{ role: "user", content: "Hi" }], stream }),
        ),
      },
      sink,
      deps,
    );
    return { samples, logs: deps.logs, body: sink.body() };
  }

  it("measures a stream's time to first token from the request, and its tokens", async () => {
    const { samples, logs, body } = await chat(true);
    expect(body).toContain("[DONE]");
    expect(samples).toEqual([
      { model: "acme-support-v1", ttftMs: 250, promptTokens: 7, completionTokens: 3 },
    ]);
    expect(logs[0]).toMatchObject({ ttftMs: 250 });
  });

  it("counts the tokens of a whole completion, with no time to first token", async () => {
    const { samples } = await chat(false);
    expect(samples).toEqual([
      { model: "acme-support-v1", ttftMs: undefined, promptTokens: 7, completionTokens: 3 },
    ]);
  });
});
