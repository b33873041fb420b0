import { z } from "zod";
import type { BaseModel, TrainingMethod } from "../catalog/base-models.ts";
import type { TrainingObjective } from "../catalog/catalog-file.ts";
import { type ResolvedHyperparameters, trainingExamples } from "./hyperparameters.ts";
import { type ResourcePlan, toResourcesObject } from "./resources.ts";

/**
 * The `dry_run` answer of `POST /fine_tuning/jobs`: tokens, cost and time, before anything is created.
 *
 * Assumptions, all in one place:
 * - Trained tokens = min(total tokens, examples × max_seq_length) × n_epochs: tokens past
 *   `max_seq_length` are truncated away and not trained on. A `validation_split` trains on the
 *   examples it leaves, so on that share of the tokens.
 * - DPO: each pair is two sequences, the prompt with the preferred output and the prompt with the other,
 *   while the validator counts a pair's prompt once beside both outputs. So a pair's tokens are
 *   2 × its counted tokens − its outputs (the file's assistant tokens; without them, 2 × its counted
 *   tokens, an upper bound), capped at 2 × max_seq_length. The trainer also runs every pair once
 *   through the reference model (a forward pass, 2 × parameters FLOPs per token, before the first step,
 *   not again per epoch): one epoch's tokens at {@link REFERENCE_PASS_SHARE} of a trained token's time.
 * - Throughput from a FLOPs model: a token costs 6 × parameters FLOPs in full training (forward 2,
 *   backward 4) and 4 × parameters with LoRA (no weight gradients for the frozen base, so the backward
 *   pass is about half). Each device delivers its dense bf16 peak ({@link DEVICE_CLASSES}) at a model
 *   FLOPs utilisation of {@link MFU}; devices add up linearly.
 * - Small models do not reach that bound (kernel launches and data loading dominate), so throughput is
 *   also capped per device ({@link DeviceClass.maxTokensPerSecond}).
 * - Start-up: {@link STARTUP_SECONDS} (instance, image pull) plus the bf16 weights (2 bytes per
 *   parameter) read from S3 at {@link S3_READ_BYTES_PER_SECOND}.
 * - The GPUs are the resource planner's (resources.ts) when the plan is given: its nodes × GPUs per node
 *   of its instance type; GPU-hours are those GPUs over the whole duration, start-up included.
 * The queue wait is not in the duration; `queue_position` says how many jobs are ahead.
 */

export interface DeviceClass {
  readonly name: string;
  /** Dense bf16 peak, TFLOPS (vendor data sheets). */
  readonly peakTflops: number;
  readonly maxTokensPerSecond: number;
}

/** Device class by EC2 instance family (the part of the instance type before the dot). */
export const DEVICE_CLASSES: Readonly<Record<string, DeviceClass>> = {
  g5: { name: "A10G", peakTflops: 70, maxTokensPerSecond: 20_000 },
  g6: { name: "L4", peakTflops: 121, maxTokensPerSecond: 25_000 },
  g6e: { name: "L40S", peakTflops: 362, maxTokensPerSecond: 60_000 },
  p4d: { name: "A100-40GB", peakTflops: 312, maxTokensPerSecond: 60_000 },
  p4de: { name: "A100-80GB", peakTflops: 312, maxTokensPerSecond: 60_000 },
  p5: { name: "H100", peakTflops: 989, maxTokensPerSecond: 120_000 },
  p5e: { name: "H200", peakTflops: 989, maxTokensPerSecond: 120_000 },
  p5en: { name: "H200", peakTflops: 989, maxTokensPerSecond: 120_000 },
};

/** Any instance type not in the table, and every zero-GPU job: a few CPU cores. */
export const CPU_CLASS: DeviceClass = { name: "CPU", peakTflops: 1, maxTokensPerSecond: 2_000 };

/** Model FLOPs utilisation assumed for training (typical for FSDP/PEFT with gradient checkpointing). */
export const MFU = 0.35;
export const STARTUP_SECONDS = 180;
export const S3_READ_BYTES_PER_SECOND = 500 * 1024 * 1024;

export interface EstimateInput {
  readonly baseModel: BaseModel;
  /** Supervised when absent. */
  readonly objective?: TrainingObjective;
  readonly method: TrainingMethod;
  readonly hyperparameters: ResolvedHyperparameters;
  /**
   * From the training file's statistics: valid examples (pairs, for DPO), their total tokens, and the
   * tokens of assistant content when measured ({@link outputTokensOf}).
   */
  readonly dataset: {
    readonly examples: number;
    readonly totalTokens: number;
    readonly outputTokens?: number | undefined;
  };
  /** Jobs queued or running ahead of this one. */
  readonly jobsAhead: number;
  /** The resource plan the job would run with; without it, the catalog's per-method GPUs. */
  readonly resources?: ResourcePlan;
}

/** The device class of a method spec: CPU for zero GPUs or an unknown family. */
export function deviceClass(instanceType: string, gpus: number): DeviceClass {
  if (gpus === 0) return CPU_CLASS;
  return DEVICE_CLASSES[instanceType.split(".")[0] ?? ""] ?? CPU_CLASS;
}

/**
 * The tokens of assistant content in a file's validation statistics (`tokens.assistant`): for a
 * preference file, both outputs of every pair. Undefined when not measured or not a number.
 */
export function outputTokensOf(statistics: unknown): number | undefined {
  const parsed = z
    .object({ tokens: z.object({ assistant: z.number().nonnegative() }) })
    .safeParse(statistics);
  return parsed.success ? parsed.data.tokens.assistant : undefined;
}

/**
 * What a token of DPO's reference pass (forward only: 2 × parameters FLOPs) costs, as a share of a
 * trained token of the method (LoRA 4, full 6 × parameters FLOPs).
 */
export const REFERENCE_PASS_SHARE: Readonly<Record<TrainingMethod, number>> = { lora: 2 / 4, full: 2 / 6 };

/** Training tokens per second for a model and method under the assumptions above. */
export function trainingTokensPerSecond(
  model: BaseModel,
  method: TrainingMethod,
  resources?: ResourcePlan,
): number {
  const spec = model.methods[method];
  if (!spec) throw new Error(`${model.name} has no method ${method}`);
  const gpus = resources ? resources.nodes * resources.gpusPerNode : spec.gpus;
  const devices = Math.max(1, gpus);
  const device = deviceClass(resources?.instanceType ?? spec.instanceType, gpus);
  const flopsPerToken = (method === "full" ? 6 : 4) * model.parameters;
  const bound = (devices * device.peakTflops * 1e12 * MFU) / flopsPerToken;
  return Math.min(bound, devices * device.maxTokensPerSecond);
}

/** The dry-run object. */
export function estimateJob(input: EstimateInput) {
  const { baseModel, method, hyperparameters: h } = input;
  const spec = baseModel.methods[method];
  if (!spec) throw new Error(`${baseModel.name} has no method ${method}`);
  const objective = input.objective ?? "supervised";
  const examples = Math.max(0, input.dataset.examples);
  const counted = Math.max(0, input.dataset.totalTokens);
  const sequences = objective === "dpo" ? 2 : 1;
  const tokens =
    objective === "dpo" ? Math.max(counted, 2 * counted - (input.dataset.outputTokens ?? 0)) : counted;
  const kept = examples > 0 ? trainingExamples(examples, h.validation_split) / examples : 1;
  const perEpoch = Math.round(Math.min(tokens, sequences * examples * h.max_seq_length) * kept);
  const trainedTokens = perEpoch * h.n_epochs;
  const tokensPerSecond = trainingTokensPerSecond(baseModel, method, input.resources);
  const referenceTokens = objective === "dpo" ? perEpoch * REFERENCE_PASS_SHARE[method] : 0;
  const startup = STARTUP_SECONDS + (baseModel.parameters * 2) / S3_READ_BYTES_PER_SECOND;
  const gpus = input.resources ? input.resources.nodes * input.resources.gpusPerNode : spec.gpus;
  const instanceType = input.resources?.instanceType ?? spec.instanceType;
  const device = deviceClass(instanceType, gpus);
  const duration = Math.ceil(startup + (trainedTokens + referenceTokens) / tokensPerSecond);
  return {
    object: "fine_tuning.job.estimate" as const,
    model: baseModel.name,
    objective,
    method,
    trained_tokens: trainedTokens,
    estimated_cost_usd: Math.round((trainedTokens / 1000) * spec.pricePer1kTokensUsd * 1e6) / 1e6,
    estimated_duration_seconds: duration,
    estimated_gpu_hours: Math.round(((gpus * duration) / 3600) * 1000) / 1000,
    queue_position: Math.max(0, Math.floor(input.jobsAhead)) + 1,
    ...(input.resources ? { resources: toResourcesObject(input.resources) } : {}),
    hyperparameters: { ...h },
    assumptions: {
      tokens_per_second: Math.round(tokensPerSecond),
      device: device.name,
      gpus,
      instance_type: instanceType,
      price_per_1k_tokens_usd: spec.pricePer1kTokensUsd,
      sequences_per_example: sequences,
    },
  };
}

export type JobEstimate = ReturnType<typeof estimateJob>;
