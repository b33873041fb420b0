"""The trainer's configuration: the environment contract and the hyperparameters, in one typed place."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Literal, Mapping

from .chat_format import FAMILIES, Family

Method = Literal["lora", "full"]

# What learning_rate_multiplier scales; the same numbers as the API's BASE_LEARNING_RATE.
BASE_LEARNING_RATE: dict[Method, float] = {"lora": 2e-4, "full": 1e-5}


class ConfigError(ValueError):
    """Bad input in the job's configuration: reported as an error event, exit code 2."""


@dataclass(frozen=True)
class Hyperparameters:
    """Every knob with its default; "auto" or absent means the default. Bounds are checked in `parse`."""

    n_epochs: int = 3
    batch_size: int = 8
    learning_rate_multiplier: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16  # "auto" or absent: 2 × lora_r
    lora_dropout: float = 0.05
    # Capped by the tokenizer's model_max_length; the API resolves "auto" from the data's longest example.
    max_seq_length: int = 2048
    seed: int = 42
    # Absolute learning rate; overrides base rate × multiplier (BASE_LEARNING_RATE).
    learning_rate: float | None = None
    warmup_ratio: float = 0.03
    lr_scheduler: Literal["linear", "cosine"] = "cosine"
    weight_decay: float = 0.0
    gradient_accumulation_steps: int = 1
    # Recompute activations in the backward pass: less memory for about a third more compute.
    gradient_checkpointing: bool = False
    checkpoint_every_steps: int = 100
    eval_every_steps: int = 50
    # Seconds between metrics events (first and last step, evals and checkpoints always report).
    metrics_interval_seconds: float = 15.0

    def learning_rate_for(self, method: Method) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return BASE_LEARNING_RATE[method] * self.learning_rate_multiplier

    def to_json(self) -> dict[str, object]:
        return asdict(self)


_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "n_epochs": (1, 50),
    "batch_size": (1, 256),
    "lora_r": (1, 256),
    "lora_alpha": (1, 1024),
    "max_seq_length": (16, 131072),
    "seed": (0, 2**31 - 1),
    "gradient_accumulation_steps": (1, 1024),
    "checkpoint_every_steps": (1, 10**7),
    "eval_every_steps": (1, 10**7),
}
_FLOAT_BOUNDS: dict[str, tuple[float, float]] = {
    "learning_rate_multiplier": (1e-6, 10.0),
    "lora_dropout": (0.0, 0.5),
    "learning_rate": (1e-8, 1.0),
    "warmup_ratio": (0.0, 0.5),
    "weight_decay": (0.0, 1.0),
    "metrics_interval_seconds": (0.0, 3600.0),
}


def parse_hyperparameters(raw: Mapping[str, object]) -> Hyperparameters:
    values: dict[str, object] = {}
    known = set(Hyperparameters.__dataclass_fields__)
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"unknown hyperparameter {key!r}")
        if value == "auto" or value is None:
            continue
        if key in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or int(value) != value
                or not lo <= value <= hi
            ):
                raise ConfigError(f"{key} must be an integer from {lo} to {hi}, got {value!r}")
            values[key] = int(value)
        elif key in _FLOAT_BOUNDS:
            lo_f, hi_f = _FLOAT_BOUNDS[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not lo_f <= value <= hi_f
            ):
                raise ConfigError(f"{key} must be a number from {lo_f} to {hi_f}, got {value!r}")
            values[key] = float(value)
        elif key == "lr_scheduler":
            if value not in ("linear", "cosine"):
                raise ConfigError("lr_scheduler must be 'linear' or 'cosine'")
            values[key] = value
        elif key == "gradient_checkpointing":
            if not isinstance(value, bool):
                raise ConfigError("gradient_checkpointing must be true or false")
            values[key] = value
    if "lora_alpha" not in values:  # as the API resolves it: twice the rank
        values["lora_alpha"] = min(1024, 2 * int(values.get("lora_r", Hyperparameters.lora_r)))  # type: ignore[call-overload]
    return Hyperparameters(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class JobConfig:
    job_id: str
    tenant_id: str
    method: Method
    base_model_uri: str
    training_file_uri: str
    validation_file_uri: str | None
    output_uri: str
    hyperparameters: Hyperparameters
    jobs_table: str | None
    events_table: str | None
    family: Family | None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def from_environment(env: Mapping[str, str] = os.environ) -> JobConfig:
    method = _required(env, "METHOD")
    if method not in ("lora", "full"):
        raise ConfigError("METHOD must be 'lora' or 'full'")
    try:
        raw = json.loads(env.get("HYPERPARAMETERS") or "{}")
    except json.JSONDecodeError as error:
        raise ConfigError(f"HYPERPARAMETERS is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError("HYPERPARAMETERS must be a JSON object")
    family = env.get("MODEL_FAMILY") or None
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"MODEL_FAMILY must be one of {', '.join(FAMILIES)}")
    return JobConfig(
        job_id=_required(env, "JOB_ID"),
        tenant_id=_required(env, "TENANT_ID"),
        method=method,  # type: ignore[arg-type]
        base_model_uri=_required(env, "BASE_MODEL_URI"),
        training_file_uri=_required(env, "TRAINING_FILE_URI"),
        validation_file_uri=env.get("VALIDATION_FILE_URI") or None,
        output_uri=_required(env, "OUTPUT_URI").rstrip("/") + "/",
        hyperparameters=parse_hyperparameters(raw),
        jobs_table=env.get("JOBS_TABLE") or None,
        events_table=env.get("EVENTS_TABLE") or None,
        family=family,  # type: ignore[arg-type]
    )
