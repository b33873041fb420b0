import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BatchClient,
  ListJobsCommand,
  SubmitJobCommand,
  type SubmitJobCommandInput,
} from "@aws-sdk/client-batch";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BatchTargets, BatchTrainingRunner } from "../../../lambdas/aws/training-runner.ts";
import { DEFAULT_CATALOG, findBaseModel } from "../../../lambdas/core/catalog/base-models.ts";
import {
  type TrainingSubmission,
  trainerEnvironment,
  trainingResources,
} from "../../../lambdas/core/jobs/dispatch.ts";
import { type DispatchDependencies, dispatchJob } from "../../../lambdas/dispatcher/dispatch.ts";
import { dispatcherDependencies } from "../../../lambdas/dispatcher/index.ts";
import { LocalBatch } from "../../../local/platform/local-batch.ts";
import { JOB, jobRecord, TENANT } from "../../fixtures/jobs.ts";

const TARGETS: BatchTargets = {
  jobQueues: { lora: "arn:queue/lora", full: "arn:queue/full" },
  jobDefinitions: { lora: "arn:def/lora:1", full: "arn:def/full:1" },
  multiNode: {
    jobQueue: "arn:queue/multinode",
    jobDefinitions: { "p4d.24xlarge": "arn:def/mn-p4d:1", "p5.48xlarge": "arn:def/mn-p5:1" },
  },
};

const ENVIRONMENT = {
  JOB_ID: JOB,
  TENANT_ID: TENANT,
  METHOD: "full",
  FT_NNODES: "4",
  FT_NPROC_PER_NODE: "8",
};

function submission(overrides: Partial<TrainingSubmission> = {}): TrainingSubmission {
  return {
    name: JOB,
    tenantId: TENANT,
    jobId: JOB,
    method: "full",
    nodes: 4,
    gpusPerNode: 8,
    instanceType: "p5.48xlarge",
    environment: ENVIRONMENT,
    ...overrides,
  };
}

const batch = mockClient(BatchClient);
const submitted = () => batch.commandCalls(SubmitJobCommand).map((call) => call.args[0].input);
const listedQueues = () => batch.commandCalls(ListJobsCommand).map((call) => call.args[0].input.jobQueue);

beforeEach(() => {
  batch.reset();
  batch.on(ListJobsCommand).resolves({ jobSummaryList: [] });
  batch.on(SubmitJobCommand).resolves({ jobId: "batch-1", jobName: JOB });
});

/** What every SubmitJob of the job carries: its name, queue, definition, parameters and tags. */
function submitJob(jobQueue: string, jobDefinition: string): SubmitJobCommandInput {
  const ids = { tenantId: TENANT, jobId: JOB };
  return { jobName: JOB, jobQueue, jobDefinition, parameters: ids, tags: ids, propagateTags: true };
}

describe("the Batch runner's SubmitJob", () => {
  const runner = () => new BatchTrainingRunner(new BatchClient({}), TARGETS);

  it("submits a one-node run to its method's queue and definition, with its environment and the plan's GPUs", async () => {
    const environment = { JOB_ID: JOB, METHOD: "lora", FT_NNODES: "1", FT_NPROC_PER_NODE: "1" };
    const single = submission({
      method: "lora",
      nodes: 1,
      gpusPerNode: 1,
      instanceType: "g5.2xlarge",
      environment,
    });
    expect(await runner().submit(single)).toBe("batch-1");
    expect(listedQueues()).toEqual(["arn:queue/lora"]);
    expect(submitted()).toEqual<SubmitJobCommandInput[]>([
      {
        ...submitJob("arn:queue/lora", "arn:def/lora:1"),
        containerOverrides: {
          environment: [
            { name: "JOB_ID", value: JOB },
            { name: "METHOD", value: "lora" },
            { name: "FT_NNODES", value: "1" },
            { name: "FT_NPROC_PER_NODE", value: "1" },
          ],
          resourceRequirements: [{ type: "GPU", value: "1" }],
        },
      },
    ]);
  });

  it("submits a one-node run of an older job (no plan) the same way", async () => {
    const older = submission({ nodes: 1, gpusPerNode: undefined, instanceType: undefined });
    await runner().submit(older);
    const [request] = submitted();
    expect(request).toMatchObject({ jobQueue: "arn:queue/full", jobDefinition: "arn:def/full:1" });
    expect(request!.nodeOverrides).toBeUndefined();
  });

  it("submits a run of several nodes as a multi-node parallel job on the planned type's definition", async () => {
    expect(await runner().submit(submission())).toBe("batch-1");
    expect(listedQueues()).toEqual(["arn:queue/multinode"]);
    expect(submitted()).toEqual<SubmitJobCommandInput[]>([
      {
        ...submitJob("arn:queue/multinode", "arn:def/mn-p5:1"),
        nodeOverrides: {
          numNodes: 4,
          nodePropertyOverrides: [
            {
              targetNodes: "0:",
              containerOverrides: {
                environment: Object.entries(ENVIRONMENT).map(([name, value]) => ({ name, value })),
                resourceRequirements: [{ type: "GPU", value: "8" }],
              },
            },
          ],
        },
      },
    ]);
  });

  it("sends the whole environment to every node: one override, for the open range 0:", async () => {
    await runner().submit(submission({ nodes: 2, gpusPerNode: 4, instanceType: "p4d.24xlarge" }));
    const [request] = submitted();
    expect(request!.jobDefinition).toBe("arn:def/mn-p4d:1");
    // A multi-node job takes no top-level container overrides; everything goes through the node range.
    expect(request!.containerOverrides).toBeUndefined();
    const overrides = request!.nodeOverrides!.nodePropertyOverrides!;
    expect(overrides).toHaveLength(1);
    expect(overrides[0]!.targetNodes).toBe("0:");
    const environment = Object.fromEntries(
      overrides[0]!.containerOverrides!.environment!.map((e) => [e.name, e.value]),
    );
    expect(environment).toEqual(ENVIRONMENT);
    expect(overrides[0]!.containerOverrides!.resourceRequirements).toEqual([{ type: "GPU", value: "4" }]);
    expect(request!.nodeOverrides!.numNodes).toBe(2);
  });

  it("finds an earlier submission of a multi-node run on the multi-node queue and submits nothing", async () => {
    batch
      .on(ListJobsCommand)
      .resolves({ jobSummaryList: [{ jobId: "batch-0", jobName: JOB, status: "RUNNABLE" }] });
    expect(await runner().submit(submission())).toBe("batch-0");
    expect(listedQueues()).toEqual(["arn:queue/multinode"]);
    expect(submitted()).toEqual([]);
  });

  it("refuses a multi-node run it cannot place, without calling Batch", async () => {
    const noMultiNode = new BatchTrainingRunner(new BatchClient({}), { ...TARGETS, multiNode: undefined });
    await expect(noMultiNode.submit(submission())).rejects.toThrow(/no multi-node job queue is configured/);
    await expect(runner().submit(submission({ instanceType: "p5e.48xlarge" }))).rejects.toThrow(
      /no multi-node job definition for instance type p5e\.48xlarge; configured: p4d\.24xlarge, p5\.48xlarge/,
    );
    await expect(runner().submit(submission({ instanceType: undefined }))).rejects.toThrow(/\(none\)/);
    await expect(runner().submit(submission({ gpusPerNode: undefined }))).rejects.toThrow(/GPUs per node/);
    await expect(runner().submit(submission({ nodes: 0 }))).rejects.toThrow(/whole number of nodes/);
    await expect(runner().submit(submission({ nodes: 1.5 }))).rejects.toThrow(/whole number of nodes/);
    expect(batch.calls()).toHaveLength(0);
  });
});

describe("the dispatcher's Batch runner from its environment", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it("reads the multi-node queue and the instance type → job definition map", async () => {
    Object.assign(process.env, {
      JOBS_TABLE: "j",
      EVENTS_TABLE: "e",
      MODELS_TABLE: "m",
      DATASETS_BUCKET: "d",
      ARTIFACTS_BUCKET: "a",
      BATCH_JOB_QUEUES: JSON.stringify(TARGETS.jobQueues),
      BATCH_JOB_DEFINITIONS: JSON.stringify(TARGETS.jobDefinitions),
      BATCH_MULTINODE_JOB_QUEUE: "arn:queue/multinode",
      BATCH_MULTINODE_JOB_DEFINITIONS: JSON.stringify({ "p5.48xlarge": "arn:def/mn-p5:7" }),
    });
    await dispatcherDependencies().runner.submit(submission());
    expect(submitted()).toMatchObject([
      { jobQueue: "arn:queue/multinode", jobDefinition: "arn:def/mn-p5:7" },
    ]);
  });
});

describe("a job's resources on its way to the runner", () => {
  const where = { datasetsBucket: "ds", artifactsBucket: "art", jobsTable: "jobs", eventsTable: "events" };
  const model = findBaseModel("qwen2.5-7b-instruct", DEFAULT_CATALOG)!;
  const job = jobRecord({
    model: model.name,
    method: "full",
    hyperparameters: {
      n_epochs: 1,
      batch_size: 4,
      learning_rate_multiplier: 1,
      lora_r: null,
      lora_alpha: null,
      lora_dropout: null,
      max_seq_length: 2048,
      seed: 42,
    },
    resources: { nodes: 2, gpusPerNode: 8, instanceType: "p5.48xlarge" },
  });

  it("gives the trainer its node count and processes per node", () => {
    const env = trainerEnvironment(job, model, where);
    expect(env).toMatchObject({ FT_NNODES: "2", FT_NPROC_PER_NODE: "8" });
  });

  it("runs an older job without a plan on one node, letting the trainer count its GPUs", () => {
    const { resources: _, ...older } = job;
    expect(trainingResources(older)).toEqual({ nodes: 1 });
    const env = trainerEnvironment(older, model, where);
    expect(env.FT_NNODES).toBe("1");
    expect(env.FT_NPROC_PER_NODE).toBeUndefined();
  });

  it("hands the runner the plan: nodes, GPUs per node, instance type and that environment", async () => {
    const submissions: TrainingSubmission[] = [];
    const deps: DispatchDependencies = {
      jobs: {
        get: async () => job,
        claimDispatch: async () => true,
        applyTransition: async () => true,
      },
      runner: {
        submit: async (s) => {
          submissions.push(s);
          return "batch-1";
        },
        terminate: async () => {},
      },
      catalog: DEFAULT_CATALOG,
      locations: where,
      log: () => {},
    };
    await dispatchJob({ tenantId: TENANT, jobId: JOB }, deps);
    expect(submissions).toHaveLength(1);
    expect(submissions[0]).toMatchObject({ nodes: 2, gpusPerNode: 8, instanceType: "p5.48xlarge" });
    expect(submissions[0]!.environment).toMatchObject({ FT_NNODES: "2", FT_NPROC_PER_NODE: "8" });
  });
});

describe("a DPO job from a supervised model on its way to the runner", () => {
  it("submits the objective and the parent's adapter as the trainer's starting point", async () => {
    const model = findBaseModel("tiny-chat", DEFAULT_CATALOG)!;
    const job = jobRecord({
      objective: "dpo",
      initModel: { modelCode: "acme-sft", jobId: "ftjob-parent", method: "lora" },
    });
    const submissions: TrainingSubmission[] = [];
    const deps: DispatchDependencies = {
      jobs: { get: async () => job, claimDispatch: async () => true, applyTransition: async () => true },
      runner: {
        submit: async (s) => {
          submissions.push(s);
          return "batch-1";
        },
        terminate: async () => {},
      },
      catalog: DEFAULT_CATALOG,
      locations: { datasetsBucket: "ds", artifactsBucket: "art", jobsTable: "jobs", eventsTable: "events" },
      log: () => {},
    };
    expect(await dispatchJob({ tenantId: TENANT, jobId: JOB }, deps)).toBe("submitted");
    expect(submissions[0]).toMatchObject({ method: "lora", name: JOB });
    expect(submissions[0]!.environment).toMatchObject({
      METHOD: "lora",
      OBJECTIVE: "dpo",
      INIT_MODEL_URI: `s3://art/tenants/${TENANT}/jobs/ftjob-parent/adapter/`,
      BASE_MODEL_URI: `s3://art/${model.weightsPrefix}`,
    });
  });
});

describe("the local runner", () => {
  it.each([1, 4])(
    "runs a %i-node plan as one local node, without the cloud's nodes and GPUs: the launcher counts local ones",
    async (nodes) => {
      const workDir = mkdtempSync(join(tmpdir(), "ft-local-batch-"));
      const statuses: unknown[] = [];
      const local = new LocalBatch({
        command: ["sh", "-c", 'echo "nodes=$FT_NNODES nproc=$FT_NPROC_PER_NODE"'],
        onStateChange: async (event) => {
          statuses.push(event.detail.status);
        },
        workDir,
      });
      const environment = { ...ENVIRONMENT, FT_NNODES: String(nodes), FT_NPROC_PER_NODE: "8" };
      await local.submit(submission({ nodes, environment }));
      // Generous: the suite may share 2 cores with a training run.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !statuses.includes("SUCCEEDED"))
        await new Promise((r) => setTimeout(r, 25));
      await local.settled();
      expect(statuses).toContain("SUCCEEDED");
      expect(readFileSync(join(workDir, `${JOB}.log`), "utf8")).toMatch(/nodes= nproc=$/m);
    },
  );
});
