"""Training throughput: this trainer's step (length-grouped batches, no padding waste) against a
baseline of plain Hugging Face Trainer + PEFT with batches padded to the maximum length, on the same
synthetic data and the same randomly initialised Llama-architecture model.

GPU: a ~1B-parameter model, bf16, sequences up to 1024. CPU: a scaled-down model so the run takes a
few minutes on 2 cores. Prints tokens/s (real tokens, padding excluded), MFU (LoRA counted as 4N FLOPs
per token, full as 6N, against BENCH_PEAK_TFLOPS: 989 for an H100's dense bf16 by default, 0.1 on CPU)
and peak memory (each run in its own process: GPU, torch's max allocated; CPU, the max RSS, which
includes about 0.5 GiB of Python, torch and transformers).
N counts every parameter, embeddings included.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2] / "batch-images/trainer/src")
)

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from ft_trainer.chat_format import Encoded  # noqa: E402
from ft_trainer.data import Dataset, length_grouped_batches  # noqa: E402
from ft_trainer.distributed import DistEnv  # noqa: E402
from ft_trainer.train import _accumulated_step  # noqa: E402

GPU = torch.cuda.is_available()
DEVICE = "cuda" if GPU else "cpu"
DTYPE = torch.bfloat16 if GPU else torch.float32
PEAK = float(os.environ.get("BENCH_PEAK_TFLOPS", "989" if GPU else "0.1")) * 1e12
# One plain process, no process group (the single-device path of the trainer).
SINGLE = DistEnv(0, 1, 0, 1, 0, 1, DEVICE, False)


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    vocab: int
    max_len: int
    examples: int
    batch: int
    steps: int


SHAPE = (
    Shape(
        hidden=2048,
        layers=16,
        heads=16,
        vocab=32000,
        max_len=1024,
        examples=512,
        batch=8,
        steps=30,
    )
    if GPU
    else Shape(
        hidden=256,
        layers=4,
        heads=4,
        vocab=4096,
        max_len=256,
        examples=64,
        batch=4,
        steps=8,
    )
)


def make_model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=SHAPE.vocab,
        hidden_size=SHAPE.hidden,
        intermediate_size=int(SHAPE.hidden * 2.6875) // 64 * 64,
        num_hidden_layers=SHAPE.layers,
        num_attention_heads=SHAPE.heads,
        num_key_value_heads=SHAPE.heads,
        max_position_embeddings=SHAPE.max_len,
        tie_word_embeddings=False,
    )
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config).to(DEVICE, DTYPE)


def make_data() -> Dataset:
    rng = random.Random(0)
    examples = []
    for _ in range(SHAPE.examples):
        # Chat data is skewed: many short examples, a few long ones.
        length = min(
            SHAPE.max_len, max(32, int(rng.expovariate(1 / (SHAPE.max_len / 4))))
        )
        ids = [rng.randrange(SHAPE.vocab) for _ in range(length)]
        prompt = length // 2
        examples.append(Encoded(ids, [-100] * prompt + ids[prompt:], False))
    return Dataset(examples, 0, 0)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lora(model: LlamaForCausalLM) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
        ),
    )


def reset_memory() -> None:
    if GPU:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib() -> float:
    if GPU:
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def ours(method: str, data: Dataset) -> tuple[float, float]:
    reset_memory()
    model = make_model()
    n = count_params(model)
    if method == "lora":
        model = lora(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=GPU)
    model.train()
    batches = length_grouped_batches(
        [len(e.input_ids) for e in data.examples], SHAPE.batch, seed=0
    )
    tokens, elapsed = 0, 0.0
    for step, batch in enumerate(batches[: SHAPE.steps + 2]):
        if GPU:
            torch.cuda.synchronize()
        start = time.perf_counter()
        _accumulated_step(model, [batch], data, 0, SINGLE)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if GPU:
            torch.cuda.synchronize()
        if step >= 2:  # warm-up steps excluded
            elapsed += time.perf_counter() - start
            tokens += sum(len(data.examples[i].input_ids) for i in batch)
    return tokens / elapsed, n


def baseline(method: str, data: Dataset) -> tuple[float, float]:
    """Plain HF Trainer (+ PEFT for LoRA), every batch padded to the maximum length."""
    from transformers import Trainer, TrainingArguments

    reset_memory()
    model = make_model()
    n = count_params(model)
    if method == "lora":
        model = lora(model)

    class Padded(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return len(data.examples)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            e = data.examples[i]
            pad = SHAPE.max_len - len(e.input_ids)
            return {
                "input_ids": torch.tensor(e.input_ids + [0] * pad),
                "attention_mask": torch.tensor([1] * len(e.input_ids) + [0] * pad),
                "labels": torch.tensor(e.labels + [-100] * pad),
            }

    real_tokens = {"n": 0}
    timings: list[float] = []

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            if GPU:
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            if GPU:
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - self.t)

    args = TrainingArguments(
        output_dir="/tmp/bench-hf",
        per_device_train_batch_size=SHAPE.batch,
        max_steps=SHAPE.steps + 2,
        learning_rate=1e-4,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        bf16=GPU,
        dataloader_drop_last=True,
        seed=0,
        use_cpu=not GPU,
        disable_tqdm=True,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer = Trainer(
        model=model, args=args, train_dataset=Padded(), callbacks=[Clock()]
    )
    trainer.remove_callback(PrinterCallback)
    order = list(
        torch.utils.data.RandomSampler(
            Padded(), generator=torch.Generator().manual_seed(0)
        )
    )
    trainer.train()
    # Real (non-padding) tokens of the timed steps, for a fair tokens/s against ours.
    per_batch = [order[i : i + SHAPE.batch] for i in range(0, len(order), SHAPE.batch)]
    real_tokens["n"] = sum(
        len(data.examples[int(i)].input_ids)
        for b in per_batch[2 : SHAPE.steps + 2]
        for i in b
    )
    return real_tokens["n"] / sum(timings[2:]), n


RUNS = {"ours": ours, "HF Trainer (padded)": baseline}


def one(method: str, impl: str) -> None:
    """One measured run, in its own process so that its peak memory is its own."""
    # CPU: one thread unless BENCH_THREADS says otherwise; on a shared 2-core machine, OpenMP threads
    # that spin-wait for each other make the numbers swing tenfold.
    if not GPU:
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    tps, n = RUNS[impl](method, make_data())
    print(json.dumps({"tps": tps, "n": n, "peak": peak_memory_gib()}), flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
        return
    data = make_data()
    real = sum(len(e.input_ids) for e in data.examples)
    padded = SHAPE.max_len * len(data.examples)
    print(
        f"device: {torch.cuda.get_device_name() if GPU else 'cpu'} ({DTYPE}); model hidden={SHAPE.hidden} "
        f"layers={SHAPE.layers} vocab={SHAPE.vocab}; {len(data.examples)} examples, {real} tokens; padding "
        f"every batch to {SHAPE.max_len} would add {padded - real} ({100 - 100 * real / padded:.0f}%); "
        f"batch {SHAPE.batch}, {SHAPE.steps} timed steps after 2 warm-up steps",
        flush=True,
    )
    print(
        f"{'run':<26}{'params':>10}{'tokens/s':>12}{'MFU':>8}{'peak mem GiB':>14}",
        flush=True,
    )
    for method in ("lora", "full"):
        flops_per_token = 4 if method == "lora" else 6
        results = {}
        for impl in RUNS:
            done = subprocess.run(
                [sys.executable, __file__, "--one", method, impl],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                print(
                    f"{method + ' ' + impl:<26} failed:\n{done.stderr[-2000:]}",
                    flush=True,
                )
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            mfu = r["tps"] * flops_per_token * r["n"] / PEAK
            results[impl] = r["tps"]
            print(
                f"{method + ' ' + impl:<26}{r['n'] / 1e6:>9.1f}M{r['tps']:>12.0f}{100 * mfu:>7.1f}%{r['peak']:>14.2f}",
                flush=True,
            )
        if len(results) == 2:
            print(
                f"{method}: speed-up over the baseline {results['ours'] / results['HF Trainer (padded)']:.2f}x"
            )
    if not GPU:
        print(
            "CPU: scaled-down shapes (the ~1B-parameter configuration runs on a CUDA device); MFU against an "
            f"assumed peak of {PEAK / 1e12:g} TFLOP/s (BENCH_PEAK_TFLOPS) for {os.environ.get('BENCH_THREADS', '1')} "
            "thread(s) (BENCH_THREADS); peak memory = the run's max RSS."
        )
    else:
        print(
            f"MFU against {PEAK / 1e12:g} TFLOP/s dense bf16 (BENCH_PEAK_TFLOPS); peak memory = max allocated."
        )


if __name__ == "__main__":
    main()
