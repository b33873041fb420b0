"""torch.distributed for the trainer: the process group, FSDP2 sharding with its mixed-precision policy,
and the few collectives the training loop needs. Pure plumbing; the recipe is train.py's.

Full-parameter training always runs in a process group (one process, or many under torchrun), so one
code path shards weights, gradients and AdamW state with FSDP2 and keeps fp32 master weights whatever
the world size. LoRA of a base that fits one GPU stays a plain single process (no group); under torchrun
LoRA is sharded the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

# How long a collective may wait for a peer before the run fails: a rank that died (OOM, SIGKILL, a lost
# node) then ends the job within this bound instead of at the Batch timeout. Checkpoint writes happen
# between collectives, so the bound must exceed the slowest checkpoint save.
DEFAULT_COLLECTIVE_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: rank among all, rank on its node, and the node. Build it with keywords
    (bench/trainer still builds one positionally, so the fields are not keyword-only yet)."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    nodes: int
    device: str
    # False: a plain single process (LoRA that fits one device), no process group.
    grouped: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        return self.local_rank == 0


def _single(device: str) -> DistEnv:
    """A plain single process: no process group."""
    return DistEnv(
        rank=0,
        world_size=1,
        local_rank=0,
        local_world_size=1,
        node_rank=0,
        nodes=1,
        device=device,
        grouped=False,
    )


SINGLE_CPU = _single("cpu")


def launched_by_torchrun(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return "TORCHELASTIC_RUN_ID" in env or ("WORLD_SIZE" in env and "RANK" in env and "LOCAL_RANK" in env)


def init_distributed(want_group: bool, device: str | None = None) -> DistEnv:
    """The process group torchrun set up (its RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT variables), or
    a group of one when `want_group` (full-parameter training outside torchrun), or none. NCCL on CUDA,
    gloo on CPU."""
    cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if launched_by_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ["LOCAL_RANK"])
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        nodes = max(1, int(os.environ.get("GROUP_WORLD_SIZE", str(world // max(local_world, 1)))))
        node_rank = int(os.environ.get("GROUP_RANK", "0"))
    elif want_group:
        rank, world, local_rank, local_world, nodes, node_rank = 0, 1, 0, 1, 1, 0
    else:
        return _single(device or ("cuda" if cuda else "cpu"))
    if cuda:
        torch.cuda.set_device(local_rank)
        chosen = f"cuda:{local_rank}"
    else:
        chosen = "cpu"
    if not dist.is_initialized():
        timeout = timedelta(
            seconds=int(os.environ.get("FT_COLLECTIVE_TIMEOUT_SECONDS", DEFAULT_COLLECTIVE_TIMEOUT_SECONDS))
        )
        backend = "nccl" if cuda else "gloo"
        if launched_by_torchrun():
            dist.init_process_group(backend, timeout=timeout)
        else:
            # A group of one needs no network and no file: an in-memory store.
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
    return DistEnv(
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        local_world_size=local_world,
        node_rank=node_rank,
        nodes=nodes,
        device=chosen,
        grouped=True,
    )


def shutdown(env: DistEnv) -> None:
    if env.grouped and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.grouped and env.world_size > 1:
        dist.barrier()


def all_sum(env: DistEnv, values: list[float]) -> list[float]:
    """Element-wise sum over all ranks (fp64, so token counts stay exact)."""
    if not env.grouped or env.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.tolist()]


def any_rank(env: DistEnv, flag: bool) -> bool:
    return bool(all_sum(env, [1.0 if flag else 0.0])[0] > 0)


def mixed_precision(env: DistEnv) -> Any:
    """bf16 compute with fp32 master weights, fp32 optimizer state and fp32 gradient reduction.

    The sharded parameters FSDP2 owns (and AdamW updates) stay fp32; `param_dtype` is only the dtype of
    the all-gathered copy used for compute, so a 1e-5 update is not rounded away as it would be on bf16
    weights. On CPU the compute copy is fp32 too unless FT_CPU_PARAM_DTYPE=bfloat16: CPU bf16 matmuls are
    slow, and fp32 keeps 1- and 2-process runs comparable step for step."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if env.device.startswith("cuda"):
        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        compute = getattr(torch, os.environ.get("FT_CPU_PARAM_DTYPE", "float32"))
    return MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32)


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The transformer blocks, the unit FSDP2 shards and gathers one at a time: the longest ModuleList
    in the model (`model.layers` of Llama/Qwen/GLM-4, `transformer.encoder.layers` of ChatGLM3, the same
    under a PEFT wrapper)."""
    lists: list[torch.nn.ModuleList] = [
        m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0
    ]
    if not lists:
        raise ValueError(f"no transformer layers found in {type(model).__name__}")
    return list(max(lists, key=lambda layers: len(layers)))  # type: ignore[arg-type]


def shard_model(model: Any, env: DistEnv) -> Any:
    """FSDP2 (`fully_shard`) per transformer block, then the root (embeddings, final norm, LM head)."""
    from torch.distributed.fsdp import fully_shard

    policy = mixed_precision(env)
    for layer in decoder_layers(model):
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def full_state_dict(model: Any, env: DistEnv) -> dict[str, torch.Tensor]:
    """The whole model's state on rank 0, on CPU (empty on other ranks); every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not env.grouped:
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


def my_part(batch: list[int], env: DistEnv) -> tuple[list[int], float]:
    """This rank's examples of a global batch, and the weight of their loss (0 for a stand-in: a rank
    with no example of a short last batch still runs forward and backward, as FSDP2's collectives need)."""
    if not env.grouped or env.world_size == 1:
        return batch, 1.0
    mine = batch[env.rank :: env.world_size]
    return (mine, 1.0) if mine else (batch[:1], 0.0)
