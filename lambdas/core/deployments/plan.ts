import { type BaseModel, modelArchitecture } from "../catalog/base-models.ts";
import { type GpuInstanceType, INSTANCE_TYPES, PLANNER } from "../jobs/resources.ts";

/**
 * The serving planner: on which instance type, over how many of its GPUs (vLLM's tensor-parallel
 * size), a full-parameter model's server runs. Pure, beside the training planner (jobs/resources.ts),
 * sharing its instance types and constants.
 *
 * Memory per GPU = bf16 weights / tp + KV cache for `concurrentSequences` sequences of the model's
 * `maxSeqLength` / tp + the per-GPU overhead; it must fit the GPU's usable share (vLLM's
 * `--gpu-memory-utilization` 0.9 is the same fraction). The tensor-parallel size must divide the
 * attention heads (vLLM's requirement) and fit one node: a server never spans nodes. The cheapest node
 * that fits wins, ties going to fewer GPUs. A catalog model trained on CPU (gpus 0: `tiny-chat`) is
 * served on CPU too, on its method's instance type.
 */

export interface ServingPlan {
  readonly instanceType: string;
  readonly tensorParallelSize: number;
  /** GPUs the server's task reserves: the tensor-parallel size, or 0 for a CPU server. */
  readonly gpus: number;
  /** Estimated bytes per GPU (0 for a CPU server). */
  readonly bytesPerGpu: number;
}

/** Sequences of the full context the KV cache must hold at once: enough to batch a few chats. */
export const SERVING_CONCURRENT_SEQUENCES = 4;

const TP_SIZES = [1, 2, 4, 8] as const;

export function servingBytesPerGpu(base: BaseModel, tensorParallelSize: number): number {
  const arch = modelArchitecture(base);
  const kvWidth = (arch.hiddenSize * arch.kvHeads) / arch.attentionHeads;
  // K and V, every layer, bf16, per token.
  const kvPerToken = 2 * arch.layers * kvWidth * PLANNER.bf16Bytes;
  const weights = base.parameters * PLANNER.bf16Bytes;
  const kvCache = kvPerToken * base.maxSeqLength * SERVING_CONCURRENT_SEQUENCES;
  return (weights + kvCache) / tensorParallelSize + PLANNER.overheadBytes;
}

/** The cheapest plan, or an Error naming the largest need when no configured type holds the model. */
export function planServing(
  base: BaseModel,
  instanceTypes: readonly GpuInstanceType[] = INSTANCE_TYPES,
): ServingPlan {
  const full = base.methods.full;
  if (full && full.gpus === 0) {
    return { instanceType: full.instanceType, tensorParallelSize: 1, gpus: 0, bytesPerGpu: 0 };
  }
  const heads = modelArchitecture(base).attentionHeads;
  let best: { plan: ServingPlan; price: number } | undefined;
  for (const type of instanceTypes) {
    for (const tp of TP_SIZES) {
      if (tp > type.gpus || heads % tp !== 0) continue;
      const need = servingBytesPerGpu(base, tp);
      if (need > type.gpuMemoryGiB * 2 ** 30 * PLANNER.usableFraction) continue;
      const plan = { instanceType: type.name, tensorParallelSize: tp, gpus: tp, bytesPerGpu: need };
      if (!best || type.usdPerHour < best.price || (type.usdPerHour === best.price && tp < best.plan.gpus)) {
        best = { plan, price: type.usdPerHour };
      }
      break; // more GPUs of the same node cost the same: the fewest that fit
    }
  }
  if (!best) {
    const need = servingBytesPerGpu(base, 8) / 2 ** 30;
    throw new Error(
      `No configured instance type can serve '${base.name}': it needs ${need.toFixed(1)} GiB per GPU over 8 GPUs.`,
    );
  }
  return best.plan;
}
