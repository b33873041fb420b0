"""The training run's records: the request, the result, and what the stages hand each other (train.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ft_contract import load_platform

from .chat_format import Family
from .config import Hyperparameters, Method, Objective
from .data import Dataset
from .distributed import (
    DistEnv,
)
from .evaluation import Best, Split
from .events import EventSink
from .preferences import PreferenceDataset


# --- the request and the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointFiles:
    """Files of one checkpoint for the uploader: its step, its local directory, and the files under it
    that this rank uploads."""

    step: int
    directory: Path
    files: tuple[Path, ...]


def _no_upload(files: CheckpointFiles) -> None:
    pass


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    base_model: Path
    family: Family
    method: Method
    hyperparameters: Hyperparameters
    training_file: Path
    validation_file: Path | None
    # Local working directory: checkpoints/ step-N/ and the final result land here.
    output_dir: Path
    events: EventSink
    # Uploads a checkpoint's files (in the container): called on every rank with the files that rank
    # wrote, then on rank 0 alone with the manifest, checkpoint.json, once every rank's files are up.
    on_checkpoint: Callable[[CheckpointFiles], None] = _no_upload
    # Called with the step number after each optimizer step and its checkpoint, if any. Production
    # observes nothing; the resume tests raise from it, as a run on a reclaimed host stops.
    on_step: Callable[[int], None] | None = None
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    # The process group; by default one is made for full-parameter training (see distributed.py).
    dist: DistEnv | None = None
    objective: Objective = "supervised"
    # A fine-tuned model to start from (DPO after SFT): its adapter/ (LoRA) or model/ (full) directory.
    init_model: Path | None = None


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    steps: int
    trained_tokens: int
    first_loss: float
    final_loss: float
    result_dir: Path
    resumed_from: int | None
    # The step whose weights are the result: the best evaluation's with validation data, else the last.
    delivered_step: int = 0
    best_step: int | None = None
    early_stopped: bool = False
    # The last periodic evaluation (`valid_*`) and the delivered weights over all validation data
    # (`full_valid_*`); empty without validation data.
    valid_metrics: dict[str, float] = field(default_factory=dict)
    full_valid_metrics: dict[str, float] = field(default_factory=dict)
    validation_split: Split | None = None

    @property
    def valid_loss(self) -> float | None:
        return self.valid_metrics.get("valid_loss")


# --- what the stages share ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """The tokenizer and the encoded examples (preference pairs for DPO): every rank holds all of them
    and takes its slice."""

    tokenizer: Any
    pad_id: int
    train: Dataset | PreferenceDataset
    valid: Dataset | PreferenceDataset | None
    # How the validation data was carved out of the training file, when it was (`validation_split`).
    split: Split | None = None

    @property
    def lengths(self) -> list[int]:
        """Per training example (a pair: both sequences), for length-grouped batching."""
        return self.train.lengths


@dataclass(frozen=True)
class Model:
    """The model (LoRA-wrapped, FSDP2-sharded in a group), its trainable parameters, its compute dtype."""

    module: Any
    params: list[torch.nn.Parameter]
    compute_dtype: torch.dtype


@dataclass(frozen=True)
class Optimization:
    """AdamW, its warmup schedule and the step counts the schedule spans."""

    optimizer: Any
    scheduler: Any
    steps_per_epoch: int
    total_steps: int


@dataclass(frozen=True)
class TrainingRun:
    """Everything set up for a run: what the stages after setup read (and never replace)."""

    req: TrainRequest
    env: DistEnv
    data: Data
    model: Model
    optim: Optimization

    @property
    def checkpoints(self) -> Path:
        return self.req.output_dir / load_platform().checkpoints_dir

    @property
    def metrics_log(self) -> Path:
        return self.req.output_dir / load_platform().metrics_name

    @property
    def main_events(self) -> EventSink:
        """Rank 0's events in full; on the other ranks only errors (each rank reports its own failure)."""
        return self.req.events if self.env.is_main else _Quiet(self.req.events)

    @property
    def checkpoint_format(self) -> str:
        return "dcp" if self.env.grouped else "peft" if self.req.method == "lora" else "safetensors"


@dataclass
class Progress:
    """Where a run stands: what a checkpoint's manifest records, a resumed run starts from, and the
    latest evaluation."""

    step: int = 0
    trained_tokens: int = 0
    first_loss: float | None = None
    # The last optimizer step's loss, and its other metrics (OpenAI's names: train_mean_token_accuracy;
    # DPO's reward_accuracy, reward_margin), reported with it.
    loss: float | None = None
    step_metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: int | None = None
    # The latest evaluation (`valid_loss`, …), the best one so far, and whether patience ran out.
    valid: dict[str, float] = field(default_factory=dict)
    valid_step: int | None = None
    best: Best = field(default_factory=Best)
    stopped_early: bool = False


class _Quiet:
    """Events of the ranks other than 0: only errors get through."""

    def __init__(self, events: EventSink) -> None:
        self._events = events

    def message(self, text: str, level: Any = "info", data: dict[str, Any] | None = None) -> None:
        if level == "error":
            self._events.message(text, level, data)

    def metrics(self, data: dict[str, Any]) -> None:
        pass
