import {
  type BaseModel,
  type ModelArchitecture,
  modelArchitecture,
  type TrainingMethod,
} from "../catalog/base-models.ts";
import { InvalidRequestError } from "../errors.ts";
import { AUTO_DEFAULTS, BOUNDS } from "./hyperparameters.ts";

/**
 * The resource planner: how many GPUs of which instance type a fine-tuning job needs, from the base
 * model's size and shape, the method, `max_seq_length` and the micro-batch (examples per GPU per
 * forward pass). Pure: no AWS, no I/O. The formula, term by term, is in this folder's README
 * ("Resource planner"); the constants below are its knobs.
 *
 * Training recipe it sizes (what the trainer, batch-images/trainer, runs on a GPU):
 * - full: FSDP2 over every GPU of the job, wrapped as the trainer's `distributed.py` wraps it
 *   (`fully_shard` on each transformer block, then on the root: embeddings, final norm, output head);
 *   mixed precision: fp32 master weights, gradients reduced and kept in fp32, AdamW's two fp32 moments,
 *   bf16 compute. A one-GPU job runs the same recipe (a process group of one).
 * - LoRA on one GPU: a plain process, the frozen base in bf16, fp32 adapters with AdamW.
 * - LoRA on several GPUs (a plan with more than one GPU): the same FSDP2 group as full training;
 *   the trainer loads the base in fp32 there, so its frozen shards are fp32, and only the adapters have
 *   gradients and optimizer state.
 * - both: activation checkpointing on every block, SDPA (flash / memory-efficient) attention, so no
 *   seq² attention matrix is ever materialised.
 *
 * Choice: every (instance type, nodes) pair is a candidate, using all GPUs of each node (a job never
 * shares a node, so a node's idle GPUs would be paid for anyway); nodes > 1 only on types that allow
 * multi-node jobs, up to `maxNodes`. The cheapest candidate per hour that fits wins (price × nodes),
 * ties going to fewer GPUs, then to the earlier type in the list. One-GPU types are the cheapest, so a
 * job that fits one GPU runs on one GPU.
 */

// ---- instance types ----------------------------------------------------------------------------

/** A GPU instance type the platform may run training on. */
export interface GpuInstanceType {
  /** EC2 instance type, e.g. `p4de.24xlarge`. */
  readonly name: string;
  /** GPUs per node. */
  readonly gpus: number;
  /** GPU model, e.g. `A100-80GB`. */
  readonly gpu: string;
  /** Memory of one GPU, GiB, as `nvidia-smi` reports it. */
  readonly gpuMemoryGiB: number;
  /** Dense bf16 peak of one GPU, TFLOP/s (vendor data sheets, no sparsity). */
  readonly bf16Tflops: number;
  /** The type has an Elastic Fabric Adapter. */
  readonly efa: boolean;
  /**
   * The planner may use several nodes of this type for one job: the P families, whose GPUs talk over
   * NVLink/NVSwitch inside a node and GPUDirect RDMA over 400–3200 Gbps EFA between nodes. The g5 and
   * g6e types (PCIe GPUs, no GPUDirect RDMA) run single-node jobs only, even where they have EFA.
   */
  readonly multiNode: boolean;
  /** On-Demand price of one node, USD per hour: approximate us-east-1 Linux list prices. */
  readonly usdPerHour: number;
  /**
   * Fewest nodes a job may use on this entry (default 1). An operator's multi-node compute runs jobs of
   * 2 nodes and more; a single-node job of the same type runs only where its method's compute has it.
   */
  readonly minNodes?: number;
}

/**
 * The configured GPU instance types, cheapest node first within each family. Prices are approximate
 * us-east-1 On-Demand list prices (the P families after AWS's June 2025 price reduction); they rank the
 * candidates, nothing is billed from them, and an operator with other prices passes its own list.
 */
export const INSTANCE_TYPES: readonly GpuInstanceType[] = Object.freeze([
  gpuType("g5.2xlarge", 1, "A10G", 22.49, 70, false, false, 1.212),
  gpuType("g5.12xlarge", 4, "A10G", 22.49, 70, false, false, 5.672),
  gpuType("g5.48xlarge", 8, "A10G", 22.49, 70, true, false, 16.288),
  gpuType("g6.2xlarge", 1, "L4", 22.49, 121, false, false, 0.978),
  gpuType("g6e.2xlarge", 1, "L40S", 44.99, 362, false, false, 2.242),
  gpuType("g6e.12xlarge", 4, "L40S", 44.99, 362, true, false, 10.493),
  gpuType("g6e.48xlarge", 8, "L40S", 44.99, 362, true, false, 30.131),
  gpuType("p4d.24xlarge", 8, "A100-40GB", 40, 312, true, true, 21.96),
  gpuType("p4de.24xlarge", 8, "A100-80GB", 80, 312, true, true, 27.45),
  gpuType("p5.48xlarge", 8, "H100", 79.65, 989, true, true, 55.04),
  gpuType("p5e.48xlarge", 8, "H200", 140.4, 989, true, true, 63.3),
]);

function gpuType(
  name: string,
  gpus: number,
  gpu: string,
  gpuMemoryGiB: number,
  bf16Tflops: number,
  efa: boolean,
  multiNode: boolean,
  usdPerHour: number,
): GpuInstanceType {
  return Object.freeze({ name, gpus, gpu, gpuMemoryGiB, bf16Tflops, efa, multiNode, usdPerHour });
}

/**
 * The entries of {@link INSTANCE_TYPES} with these names, in that list's order: how an operator's
 * configuration (a list of names) becomes the planner's `instanceTypes`. Throws on an unknown name.
 */
export function selectInstanceTypes(
  names: readonly string[],
  all: readonly GpuInstanceType[] = INSTANCE_TYPES,
): GpuInstanceType[] {
  const unknown = names.filter((name) => !all.some((type) => type.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `Unknown GPU instance type(s): ${unknown.join(", ")}; known: ${all.map((t) => t.name).join(", ")}.`,
    );
  }
  return all.filter((type) => names.includes(type.name));
}

// ---- the formula -------------------------------------------------------------------------------

const GIB = 2 ** 30;

/** The constants of the formula (README, "Resource planner"). */
export const PLANNER = Object.freeze({
  /**
   * fp32: the sharded weights of an FSDP2 group (full training's master weights, LoRA's frozen base),
   * gradients (kept and reduced in fp32), LoRA adapters.
   */
  fp32Bytes: 4,
  /** AdamW's first and second moments, fp32, per trained parameter. */
  adamBytes: 8,
  /** bf16: a one-GPU LoRA job's frozen base, the all-gathered compute copy, activations. */
  bf16Bytes: 2,
  /** Blocks held unsharded at once besides the root: the one computing and the one prefetched. */
  gatheredBlocks: 2,
  /** Per logit: the bf16 logits of the output head plus the fp32 copy the cross-entropy works on. */
  logitBytes: 6,
  /** CUDA context, NCCL buffers, allocator fragmentation, per GPU. */
  overheadBytes: 3 * GIB,
  /** Share of a GPU's memory a plan may fill. */
  usableFraction: 0.9,
  /** Default cap on nodes per job. */
  maxNodes: 16,
});

/** Bytes one GPU holds, by kind. */
export interface BytesPerGpu {
  readonly weights: number;
  readonly gradients: number;
  readonly optimizer: number;
  readonly activations: number;
  readonly overhead: number;
  readonly total: number;
}

export interface MemoryInput {
  readonly model: BaseModel;
  readonly method: TrainingMethod;
  readonly maxSeqLength: number;
  readonly microBatchSize: number;
  /** GPUs of the job (nodes × GPUs per node). */
  readonly worldSize: number;
  /** LoRA rank (default: the `"auto"` value, 8). */
  readonly loraRank?: number;
}

/** Parameters of one transformer block: q and o (h×h each), k and v (h×d_kv each), gate, up, down (h×f each). */
export function blockParameters(arch: ModelArchitecture): number {
  const h = arch.hiddenSize;
  return 2 * h * h + 2 * h * kvWidth(arch) + 3 * h * arch.intermediateSize;
}

/** Parameters of the FSDP root: the input embedding and, unless tied to it, the output head (V×h each). */
export function rootParameters(arch: ModelArchitecture): number {
  return arch.vocabSize * arch.hiddenSize * (arch.tiedEmbeddings ? 1 : 2);
}

/** Parameters the architecture accounts for: the blocks and the root. */
export function architectureParameters(arch: ModelArchitecture): number {
  return arch.layers * blockParameters(arch) + rootParameters(arch);
}

/** LoRA's trainable parameters: rank × (in + out) of every linear layer of every block (the trainer's targets). */
export function loraParameters(arch: ModelArchitecture, rank: number): number {
  const h = arch.hiddenSize;
  const d = kvWidth(arch);
  const f = arch.intermediateSize;
  // q: h→h, k, v: h→d, o: h→h, gate, up: h→f, down: f→h
  const inPlusOut = 2 * h + 2 * (h + d) + 2 * h + 2 * (h + f) + (f + h);
  return arch.layers * rank * inPlusOut;
}

function kvWidth(arch: ModelArchitecture): number {
  return (arch.hiddenSize * arch.kvHeads) / arch.attentionHeads;
}

/**
 * Bytes of activations per GPU, with checkpointing and SDPA: every block's input (the checkpoints),
 * one block's activations while it is recomputed plus their gradients, and the logits.
 */
export function activationBytes(
  arch: ModelArchitecture,
  method: TrainingMethod,
  maxSeqLength: number,
  microBatchSize: number,
): number {
  const tokens = maxSeqLength * microBatchSize;
  const h = arch.hiddenSize;
  const f = arch.intermediateSize;
  const b = PLANNER.bf16Bytes;
  const checkpoints = arch.layers * tokens * h * b;
  // One block's saved forward tensors per token, in bf16 elements: attention (the QKV input h, q h,
  // k and v d_kv each, the SDPA output h), the two norms' inputs (2h), the gated MLP (its input h,
  // gate f, up f, activation f, product f), i.e. 6h + 2·d_kv + 4f; LoRA adds the dropout copy of each
  // adapted projection's input (five of width h, o's h, down's f).
  const perToken = 6 * h + 2 * kvWidth(arch) + 4 * f + (method === "lora" ? 6 * h + f : 0);
  const recompute = 2 * tokens * perToken * b; // the activations and, in the backward, their gradients
  const logits = tokens * arch.vocabSize * PLANNER.logitBytes;
  return checkpoints + recompute + logits;
}

/** Bytes one GPU needs for this job on `worldSize` GPUs (README, "Resource planner"). */
export function bytesPerGpu(input: MemoryInput): BytesPerGpu {
  checkInput(input.maxSeqLength, input.microBatchSize);
  const n = input.worldSize;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`worldSize must be a positive integer, got ${n}`);
  const arch = modelArchitecture(input.model);
  const p = input.model.parameters;
  // Unsharded working copies: FSDP2 keeps the root gathered from the forward to the end of the backward
  // (it does not reshard the root after the forward) and gathers the blocks one by one, prefetching the
  // next; the root's and one block's gradients exist unsharded, in fp32, for their reduce-scatter.
  const root = rootParameters(arch);
  const block = blockParameters(arch);
  const gathered = (root + PLANNER.gatheredBlocks * block) * PLANNER.bf16Bytes;
  const unshardedGradients = (root + block) * PLANNER.fp32Bytes;
  let weights: number;
  let gradients: number;
  let optimizer: number;
  if (input.method === "full") {
    weights = (p * PLANNER.fp32Bytes) / n + gathered;
    gradients = (p * PLANNER.fp32Bytes) / n + unshardedGradients;
    optimizer = (p * PLANNER.adamBytes) / n;
  } else {
    const t = loraParameters(arch, input.loraRank ?? AUTO_DEFAULTS.lora_r);
    // One GPU: a plain process with the base in bf16. Several: the FSDP2 group, the base in fp32 shards.
    weights =
      n === 1 ? p * PLANNER.bf16Bytes + t * PLANNER.fp32Bytes : ((p + t) * PLANNER.fp32Bytes) / n + gathered;
    gradients = (t * PLANNER.fp32Bytes) / n;
    optimizer = (t * PLANNER.adamBytes) / n;
  }
  const activations = activationBytes(arch, input.method, input.maxSeqLength, input.microBatchSize);
  const parts = {
    weights: Math.ceil(weights),
    gradients: Math.ceil(gradients),
    optimizer: Math.ceil(optimizer),
    activations: Math.ceil(activations),
    overhead: PLANNER.overheadBytes,
  };
  return {
    ...parts,
    total: parts.weights + parts.gradients + parts.optimizer + parts.activations + parts.overhead,
  };
}

function checkInput(maxSeqLength: number, microBatchSize: number): void {
  if (!Number.isInteger(maxSeqLength) || maxSeqLength < 1) {
    throw new RangeError(`maxSeqLength must be a positive integer, got ${maxSeqLength}`);
  }
  if (!Number.isInteger(microBatchSize) || microBatchSize < 1) {
    throw new RangeError(`microBatchSize must be a positive integer, got ${microBatchSize}`);
  }
}

// ---- the plan ----------------------------------------------------------------------------------

export interface PlanInput {
  readonly model: BaseModel;
  readonly method: TrainingMethod;
  readonly maxSeqLength: number;
  /** Examples per GPU per forward pass. */
  readonly microBatchSize: number;
  /** The types to choose from (default {@link INSTANCE_TYPES}). */
  readonly instanceTypes?: readonly GpuInstanceType[];
  /** Most nodes one job may use (default {@link PLANNER.maxNodes}). */
  readonly maxNodes?: number;
  /** LoRA rank (default 8). */
  readonly loraRank?: number;
  /**
   * Request path of the hyperparameters, for the 400's `param`: `method.hyperparameters` (default) or
   * `hyperparameters` for the legacy field.
   */
  readonly hyperparametersParam?: string;
}

export interface ResourcePlan {
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly instanceType: string;
  /** GPU model of the instance type. */
  readonly gpu: string;
  readonly bytesPerGpu: BytesPerGpu;
  /** Memory of one GPU of the instance type, bytes (the plan fills at most `usableFraction` of it). */
  readonly gpuMemoryBytes: number;
  /** The weights are sharded over more than one GPU with FSDP2. */
  readonly sharded: boolean;
  /** On-Demand price of all nodes, USD per hour. */
  readonly usdPerHour: number;
}

interface Candidate {
  readonly type: GpuInstanceType;
  readonly nodes: number;
}

/**
 * The cheapest configuration that fits, see the module comment. Throws `InvalidRequestError` (400,
 * code `insufficient_gpu_memory`) when none does, naming the bytes per GPU the job needs on the largest
 * configuration tried and the largest GPU available. Its `param` says what the client can change:
 * `model` when the job fits nowhere even at the shortest `max_seq_length` (64) and one example per
 * GPU, else `method.hyperparameters.max_seq_length` when it fits nowhere at one example per GPU, else
 * `method.hyperparameters.batch_size` (the micro-batch).
 */
export function planResources(input: PlanInput): ResourcePlan {
  checkInput(input.maxSeqLength, input.microBatchSize);
  if (!input.model.methods[input.method]) {
    throw new Error(`${input.model.name} can not be trained with ${input.method}`);
  }
  const types = input.instanceTypes ?? INSTANCE_TYPES;
  if (types.length === 0) throw new Error("No GPU instance types are configured.");
  const maxNodes = input.maxNodes ?? PLANNER.maxNodes;
  if (!Number.isInteger(maxNodes) || maxNodes < 1) {
    throw new RangeError(`maxNodes must be a positive integer, got ${maxNodes}`);
  }

  const candidates: Candidate[] = [];
  for (const type of types) {
    for (let nodes = type.minNodes ?? 1; nodes <= (type.multiNode ? maxNodes : 1); nodes++) {
      candidates.push({ type, nodes });
    }
  }
  candidates.sort(
    (a, b) =>
      a.type.usdPerHour * a.nodes - b.type.usdPerHour * b.nodes ||
      a.type.gpus * a.nodes - b.type.gpus * b.nodes,
  ); // stable: equal candidates keep the list's order

  for (const candidate of candidates) {
    const plan = planFor(input, candidate, input.maxSeqLength, input.microBatchSize);
    if (plan) return plan;
  }
  throw insufficient(input, types, candidates);
}

/** The plan for one candidate, or undefined when it does not fit. */
function planFor(
  input: PlanInput,
  { type, nodes }: Candidate,
  maxSeqLength: number,
  microBatchSize: number,
): ResourcePlan | undefined {
  const worldSize = nodes * type.gpus;
  const gpuMemoryBytes = Math.round(type.gpuMemoryGiB * GIB);
  const usable = gpuMemoryBytes * PLANNER.usableFraction;
  const bytes = bytesPerGpu({ ...input, maxSeqLength, microBatchSize, worldSize });
  if (bytes.total > usable) return undefined;
  return {
    nodes,
    gpusPerNode: type.gpus,
    instanceType: type.name,
    gpu: type.gpu,
    bytesPerGpu: bytes,
    gpuMemoryBytes,
    sharded: worldSize > 1,
    usdPerHour: round2(type.usdPerHour * nodes),
  };
}

/** Bytes per GPU on the candidate with the most GPUs. */
function largestNeed(input: PlanInput, candidates: readonly Candidate[], maxSeqLength: number, mbs: number) {
  const size = (c: Candidate) => c.type.gpus * c.nodes;
  const largest = candidates.reduce((a, b) =>
    size(b) > size(a) || (size(b) === size(a) && b.type.gpuMemoryGiB > a.type.gpuMemoryGiB) ? b : a,
  );
  const worldSize = largest.type.gpus * largest.nodes;
  const bytes = bytesPerGpu({ ...input, maxSeqLength, microBatchSize: mbs, worldSize });
  return { largest, worldSize, bytes };
}

function insufficient(
  input: PlanInput,
  types: readonly GpuInstanceType[],
  candidates: readonly Candidate[],
): InvalidRequestError {
  const { largest, worldSize, bytes } = largestNeed(
    input,
    candidates,
    input.maxSeqLength,
    input.microBatchSize,
  );
  const biggest = types.reduce((a, b) => (b.gpuMemoryGiB > a.gpuMemoryGiB ? b : a));
  const fitsSomewhere = (seq: number, mbs: number) =>
    candidates.some((candidate) => planFor(input, candidate, seq, mbs) !== undefined);
  const prefix = input.hyperparametersParam ?? "method.hyperparameters";
  const shortest = Math.min(BOUNDS.max_seq_length.min, input.maxSeqLength);
  let param: string;
  let advice: string;
  if (!fitsSomewhere(shortest, 1)) {
    param = "model";
    const lora = input.method === "full" && input.model.methods.lora !== undefined;
    advice = `Choose a smaller base model${lora ? " or method 'lora'" : ""}.`;
  } else if (!fitsSomewhere(input.maxSeqLength, 1)) {
    param = `${prefix}.max_seq_length`;
    advice = "Lower max_seq_length.";
  } else {
    param = `${prefix}.batch_size`;
    advice = "Lower batch_size.";
  }
  const usable = (type: GpuInstanceType) => gib(type.gpuMemoryGiB * GIB * PLANNER.usableFraction);
  const configuration = `${largest.nodes} × ${largest.type.name} (${worldSize} GPU${worldSize === 1 ? "" : "s"})`;
  return new InvalidRequestError(
    `Base model '${input.model.name}' with method '${input.method}' at max_seq_length ${input.maxSeqLength} ` +
      `does not fit any configured GPU instance: it needs ${gib(bytes.total)} GiB per GPU even on the largest ` +
      `configuration tried, ${configuration}, whose ${largest.type.gpu} GPUs have ${usable(largest.type)} GiB ` +
      `usable; the largest GPU available, ${biggest.gpu} (${biggest.name}), has ${usable(biggest)} GiB usable ` +
      `of ${gib(biggest.gpuMemoryGiB * GIB)} GiB. ${advice}`,
    param,
    "insufficient_gpu_memory",
  );
}

function gib(bytes: number): string {
  return (bytes / GIB).toFixed(1);
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** The wire shape of the dry run's `estimate.resources`. */
export function toResourcesObject(plan: ResourcePlan) {
  return { nodes: plan.nodes, gpus_per_node: plan.gpusPerNode, instance_type: plan.instanceType };
}

export type ResourcesObject = ReturnType<typeof toResourcesObject>;

/**
 * The instance types a deployment has, as the CDK app passes them to the jobs function
 * (`TRAINING_INSTANCE_TYPES`): each method's single-node compute environment, and the multi-node one.
 */
export interface ConfiguredInstanceTypes {
  readonly lora: readonly string[];
  readonly full: readonly string[];
  readonly multiNode: readonly string[];
}

/** The environment variable the jobs function reads {@link ConfiguredInstanceTypes} from (JSON). */
export const TRAINING_INSTANCE_TYPES_ENV = "TRAINING_INSTANCE_TYPES";

/**
 * The planner's choices for one method in a deployment: one node of each type of the method's compute
 * environment (all its GPUs, as its job definition asks), and 2 or more nodes of each multi-node type.
 * So a single-node plan always fits the method's job queue, and a multi-node plan the multi-node queue.
 * Throws on a type the planner does not know (a typo in the CDK context fails at synth and cold start).
 */
export function configuredInstanceTypes(
  configured: ConfiguredInstanceTypes,
  method: TrainingMethod,
): GpuInstanceType[] {
  const single = selectInstanceTypes(configured[method]).map((type) => ({ ...type, multiNode: false }));
  const multi = selectInstanceTypes(configured.multiNode).map((type) => ({
    ...type,
    multiNode: true,
    minNodes: 2,
  }));
  return [...single, ...multi];
}

/** Reads `TRAINING_INSTANCE_TYPES`; undefined (every known type) when unset, as on the local platform. */
export function instanceTypesFromEnv(value: string | undefined): ConfiguredInstanceTypes | undefined {
  if (value === undefined || value === "") return undefined;
  const parsed = JSON.parse(value) as Partial<ConfiguredInstanceTypes>;
  const list = (key: keyof ConfiguredInstanceTypes) => {
    const names = parsed[key] ?? [];
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
      throw new Error(`${TRAINING_INSTANCE_TYPES_ENV}.${key} must be a list of instance type names`);
    }
    selectInstanceTypes(names);
    return names as string[];
  };
  return { lora: list("lora"), full: list("full"), multiNode: list("multiNode") };
}
