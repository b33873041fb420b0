"""Distributed full-parameter training throughput: the trainer's FSDP2 path (train.setup_model's sharding,
its mixed-precision policy and its loss step) under torchrun, on the same synthetic data and
Llama-architecture model as run.py.

Run by `npm run bench:trainer -- --distributed`, which starts it with torchrun for 1 and 2 CPU processes
(gloo), or once over every GPU (NCCL) with the ~1B-parameter shape. Rank 0 prints one JSON line, then the same as a table row: tokens/s
in all and per GPU, MFU against BENCH_PEAK_TFLOPS per device (6N FLOPs per token, N every parameter),
and the peak memory of rank 0 (GPU: max allocated; CPU: max RSS).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "batch-images/trainer/src"))

import torch  # noqa: E402

from ft_trainer.data import length_grouped_batches  # noqa: E402
from ft_trainer.distributed import init_distributed, shard_model, shutdown  # noqa: E402
from ft_trainer.train import _accumulated_step  # noqa: E402
from run import GPU, PEAK, SHAPE, count_params, make_data, make_model, peak_memory_gib, reset_memory  # noqa: E402


def main() -> None:
    if not GPU:
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    env = init_distributed(want_group=True)
    reset_memory()
    torch.manual_seed(0)
    # fp32 master weights; the policy computes in bf16 on GPUs (distributed.mixed_precision).
    model = make_model().to(torch.float32)
    n = count_params(model)
    if GPU:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(env.device)
    shard_model(model, env)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = make_data()
    # The global batch grows with the world size, so each process keeps SHAPE.batch examples a step.
    batches = length_grouped_batches(
        [len(e.input_ids) for e in data.examples], SHAPE.batch * env.world_size, seed=0
    )
    model.train()
    tokens, elapsed = 0, 0.0
    for step, batch in enumerate(batches[: SHAPE.steps + 2]):
        if GPU:
            torch.cuda.synchronize()
        torch.distributed.barrier()
        start = time.perf_counter()
        _, step_tokens, _ = _accumulated_step(model, [batch], data, 0, env)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if GPU:
            torch.cuda.synchronize()
        if step >= 2:  # warm-up steps excluded
            elapsed += time.perf_counter() - start
            tokens += step_tokens
    tps = tokens / elapsed
    if env.is_main:
        result = {
            "world_size": env.world_size,
            "tps": tps,
            "tps_per_device": tps / env.world_size,
            "mfu": tps * 6 * n / (PEAK * env.world_size),
            "n": n,
            "peak": peak_memory_gib(),
        }
        print(json.dumps(result), flush=True)
        label = f"{env.world_size} process(es), {n / 1e6:.1f}M params"
        print(
            f"{label:<40}{tps:>14.0f}{tps / env.world_size:>16.0f}{100 * result['mfu']:>7.1f}%{result['peak']:>14.2f}",
            flush=True,
        )
    shutdown(env)


if __name__ == "__main__":
    main()
