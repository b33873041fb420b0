"""A run stopped after a checkpoint resumes from it, and only from a checkpoint of this model: one whose
weights lack a key the model has, or hold one it has not, is refused with the key named. For each format:
a LoRA adapter (PEFT), full-parameter DCP shards (a process group), full-parameter safetensors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ft_trainer.config import Method, parse_hyperparameters
from ft_trainer.distributed import SINGLE_CPU, DistEnv
from ft_trainer.events import PrintSink
from ft_trainer.checkpoint import CheckpointMismatch, newest_checkpoint, unexplained_keys
from ft_trainer.train import TrainRequest, TrainResult, run_training
from reclaimed_host import HostReclaimed, stop_after

# 16 examples at batch 4: 4 steps, a checkpoint at step 2.
HP = {
    "n_epochs": 1,
    "batch_size": 4,
    "checkpoint_every_steps": 2,
    "eval_interval": 100000,
    "max_seq_length": 128,
    "seed": 5,
    "metrics_interval_seconds": 0,
}
Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Format:
    method: Method
    dist: DistEnv | None  # None: the trainer's own choice (a process group for full-parameter training)
    weights: str  # where the weights of checkpoints/step-N/ are


FORMATS = {
    "lora adapter": Format("lora", None, "adapter"),
    "full dcp shards": Format("full", None, "dcp"),
    "full safetensors": Format("full", SINGLE_CPU, "model"),
}


def train(
    fmt: Format, tiny_model: Path, data: Path, out: Path, on_step: Callable[[int], None] | None = None
) -> TrainResult:
    return run_training(
        TrainRequest(
            base_model=tiny_model,
            family="tiny",
            method=fmt.method,
            hyperparameters=parse_hyperparameters(HP),
            training_file=data,
            validation_file=None,
            output_dir=out,
            events=PrintSink(),
            on_step=on_step,
            device="cpu",
            dist=fmt.dist,
        )
    )


@pytest.fixture(scope="module", params=list(FORMATS))
def stopped(
    request: pytest.FixtureRequest,
    tiny_model: Path,
    small_train_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Format, Path]:
    """A run of each format whose host was reclaimed after step 2 and its checkpoint."""
    fmt = FORMATS[request.param]
    out = tmp_path_factory.mktemp("stopped")
    with pytest.raises(HostReclaimed):
        train(fmt, tiny_model, small_train_file, out, on_step=stop_after(2))
    return fmt, out


@pytest.fixture
def retry(stopped: tuple[Format, Path], tmp_path: Path) -> tuple[Format, Path]:
    """A copy of the stopped run's output directory for a retry to resume in (and a test to tamper with)."""
    fmt, out = stopped
    shutil.copytree(out, tmp_path / "out")
    return fmt, tmp_path / "out"


def test_a_run_stopped_after_a_checkpoint_resumes_from_it_and_finishes(
    retry: tuple[Format, Path], tiny_model: Path, small_train_file: Path
) -> None:
    fmt, out = retry
    checkpoint = newest_checkpoint(out / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "step-2"
    assert (checkpoint / fmt.weights).is_dir() and not (
        out / ("adapter" if fmt.method == "lora" else "model")
    ).exists()

    result = train(fmt, tiny_model, small_train_file, out)

    assert (result.resumed_from, result.steps) == (2, 4)
    assert result.result_dir.is_dir()
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
        4,
    ]


def test_refuses_to_resume_from_weights_with_an_unexpected_key_and_names_it(
    retry: tuple[Format, Path], tiny_model: Path, small_train_file: Path
) -> None:
    fmt, out = retry
    extra = _tamper(
        fmt, out, lambda weights: _add(weights, _a_layer_1_weight(weights).replace("layers.1.", "layers.7."))
    )

    with pytest.raises(CheckpointMismatch, match=f"step-2 does not match the model: unexpected {extra}$"):
        train(fmt, tiny_model, small_train_file, out)


def test_refuses_to_resume_from_weights_missing_a_key_and_names_it(
    retry: tuple[Format, Path], tiny_model: Path, small_train_file: Path
) -> None:
    fmt, out = retry
    gone = _tamper(fmt, out, lambda weights: _remove(weights, _a_layer_1_weight(weights)))

    with pytest.raises(CheckpointMismatch, match=f"step-2 does not match the model: missing {gone}$"):
        train(fmt, tiny_model, small_train_file, out)


def test_allows_a_tied_head_saved_once_and_a_non_persistent_buffer_and_nothing_else(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    tied = AutoModelForCausalLM.from_pretrained(tiny_model)
    keys = set(tied.state_dict())
    rotary = next(f"{name}.inv_freq" for name, _ in tied.named_modules() if name.endswith("rotary_emb"))
    assert "lm_head.weight" in keys and rotary not in keys
    saved = keys - {"lm_head.weight"} | {rotary}  # as save_pretrained writes it, with an old rotary buffer

    assert unexplained_keys(tied, expected=keys, saved=saved, tied_saved_once=True) == ([], [])
    # Where the writer saves every name of a tied parameter (DCP), a missing one is missing.
    assert unexplained_keys(tied, expected=keys, saved=saved) == (["lm_head.weight"], [])
    untied = AutoModelForCausalLM.from_pretrained(tiny_model, tie_word_embeddings=False)
    assert unexplained_keys(untied, expected=keys, saved=saved, tied_saved_once=True) == (
        ["lm_head.weight"],
        [],
    )


# --- tampering ----------------------------------------------------------------------------------------


def _tamper(fmt: Format, out: Path, change: Callable[[Weights], str]) -> str:
    """Applies `change` to the weights of the run's newest checkpoint, in its own format; returns the key
    `change` names."""
    from safetensors.torch import load_file, save_file

    checkpoint = newest_checkpoint(out / "checkpoints")
    assert checkpoint is not None
    if fmt.weights == "dcp":
        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save, torch_save_to_dcp

        plain = checkpoint / "plain.pt"
        dcp_to_torch_save(checkpoint / "dcp", plain)
        state = torch.load(plain, weights_only=False)
        key = change(state["model"])
        torch.save(state, plain)
        shutil.rmtree(checkpoint / "dcp")
        torch_save_to_dcp(plain, checkpoint / "dcp")
        return key
    (file,) = (checkpoint / fmt.weights).glob("*.safetensors")
    weights = load_file(str(file))
    key = change(weights)
    save_file(weights, str(file), metadata={"format": "pt"})
    return key


def _a_layer_1_weight(weights: Weights) -> str:
    return min(k for k in weights if ".layers.1." in k and k.endswith(".weight"))


def _add(weights: Weights, key: str) -> str:
    weights[key] = torch.zeros(2, 2)
    return key


def _remove(weights: Weights, key: str) -> str:
    del weights[key]
    return key
