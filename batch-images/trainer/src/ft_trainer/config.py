"""The trainer's configuration: the environment contract and the hyperparameters, in one typed place."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Mapping

from ft_contract import CatalogError, ModelSpec, load_catalog, parse_model

from .chat_format import FAMILIES, Family
from .failures import TenantFacingError

Method = Literal["lora", "full"]
# What a job optimises (OpenAI's method.type): supervised fine-tuning, or preference tuning with DPO on
# OpenAI's preference lines (input, preferred_output, non_preferred_output).
Objective = Literal["supervised", "dpo"]
OBJECTIVES: tuple[Objective, ...] = ("supervised", "dpo")

# contract/catalog.json: every hyperparameter's bounds and default, the methods' base learning rates and
# the model families, as the API reads them too (lambdas/core/catalog).
CATALOG = load_catalog()


class ConfigError(TenantFacingError, ValueError):
    """Bad input in the job's configuration or data: reported to the tenant as it is, exit code 2."""


def _default(name: str) -> Any:
    return CATALOG.hyperparameters[name].default


@dataclass(frozen=True)
class Hyperparameters:
    """Every knob with its catalog default; "auto" or absent means the default. Bounds are checked in `parse`."""

    n_epochs: int = _default("n_epochs")
    batch_size: int = _default("batch_size")
    learning_rate_multiplier: float = _default("learning_rate_multiplier")
    lora_r: int = _default("lora_r")
    lora_alpha: int = _default("lora_alpha")  # "auto" or absent: 2 × lora_r
    lora_dropout: float = _default("lora_dropout")
    # Capped by the tokenizer's model_max_length; the API resolves "auto" from the data's longest example.
    max_seq_length: int = _default("max_seq_length")
    # DPO: how far the policy may move from the reference (the KL penalty's inverse temperature).
    beta: float = _default("beta")
    seed: int = _default("seed")
    # Absolute learning rate; overrides the base rate × multiplier (the catalog's, see learning_rate_for).
    learning_rate: float | None = _default("learning_rate")
    warmup_ratio: float = _default("warmup_ratio")
    lr_scheduler: Literal["linear", "cosine"] = _default("lr_scheduler")
    weight_decay: float = _default("weight_decay")
    gradient_accumulation_steps: int = _default("gradient_accumulation_steps")
    # Recompute activations in the backward pass: less memory for about a third more compute.
    gradient_checkpointing: bool = _default("gradient_checkpointing")
    checkpoint_every_steps: int = _default("checkpoint_every_steps")
    # With validation data: evaluate every this many steps (None: about ten evaluations per run) and at
    # the last step; stop after `early_stopping_patience` evaluations without a better validation loss.
    eval_interval: int | None = _default("eval_interval")
    early_stopping_patience: int | None = _default("early_stopping_patience")
    # Without a validation file: this share of the training examples held out as validation data.
    validation_split: float = _default("validation_split")
    # Seconds between metrics events (first and last step, evals and checkpoints always report).
    metrics_interval_seconds: float = _default("metrics_interval_seconds")

    def learning_rate_for(self, method: Method) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return CATALOG.base_learning_rate(method) * self.learning_rate_multiplier

    def to_json(self) -> dict[str, object]:
        return asdict(self)


_FIELDS = set(Hyperparameters.__dataclass_fields__)
if _FIELDS != set(CATALOG.hyperparameters):
    # A knob in the catalog that the trainer does not have (or the reverse) is a release mistake.
    raise RuntimeError(
        f"catalog hyperparameters and the trainer's differ: {sorted(_FIELDS ^ set(CATALOG.hyperparameters))}"
    )


def parse_hyperparameters(raw: Mapping[str, object], model: ModelSpec | None = None) -> Hyperparameters:
    """`HYPERPARAMETERS` checked against the catalog's bounds; `max_seq_length` also against the model's
    limit, and a model's own base learning rate (the catalog's `baseLearningRate`) applied."""
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown hyperparameter {key!r}")
        if value == "auto" or value is None:
            continue
        try:
            values[key] = CATALOG.hyperparameters[key].check(value)
        except CatalogError as error:
            raise ConfigError(str(error)) from error
    if "lora_alpha" not in values:  # as the API resolves it: twice the rank
        alpha = CATALOG.hyperparameters["lora_alpha"]
        rank = int(values.get("lora_r", Hyperparameters.lora_r))  # type: ignore[call-overload]
        values["lora_alpha"] = min(int(alpha.max or 0), 2 * rank)
    hyperparameters = Hyperparameters(**values)  # type: ignore[arg-type]
    if model is not None:
        if hyperparameters.max_seq_length > model.max_seq_length:
            raise ConfigError(
                f"max_seq_length may be at most {model.max_seq_length} for base model {model.name!r}"
            )
    return hyperparameters


def with_model_learning_rate(
    hyperparameters: Hyperparameters, method: Method, model: ModelSpec
) -> Hyperparameters:
    """The model's own base rate × multiplier as `learning_rate`, when the catalog sets one for the method
    and the job gives no explicit rate (a 2.4 M-parameter model learns at 1e-3 to 4e-3 where a 6 B one diverges)."""
    spec = model.methods.get(method)
    if hyperparameters.learning_rate is not None or spec is None or spec.base_learning_rate is None:
        return hyperparameters
    rate = spec.base_learning_rate * hyperparameters.learning_rate_multiplier
    return replace(hyperparameters, learning_rate=float(CATALOG.hyperparameters["learning_rate"].check(rate)))  # type: ignore[arg-type]


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
    # The catalog entry of the base model (BASE_MODEL_SPEC, sent by the dispatcher), when known.
    base_model: ModelSpec | None = None
    # OBJECTIVE: "supervised" (default) or "dpo".
    objective: Objective = "supervised"
    # INIT_MODEL_URI: a succeeded SFT job's result (`adapter/` for lora, `model/` for full) under the
    # tenant's prefix; training starts from it (and DPO's reference is it) instead of the bare base model.
    init_model_uri: str | None = None
    # TRAINING_FILE_ETAG / VALIDATION_FILE_ETAG: the ETags of the objects the platform validated. The
    # files are downloaded with If-Match on them: another object under the key is refused as bad input.
    training_file_etag: str | None = None
    validation_file_etag: str | None = None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def base_model_from_environment(env: Mapping[str, str]) -> ModelSpec | None:
    """BASE_MODEL_SPEC: the base model's catalog entry as the API's catalog (with the operator's override)
    has it, validated by the same rules as `contract/catalog.json`'s entries."""
    raw = env.get("BASE_MODEL_SPEC")
    if not raw:
        return None
    try:
        return parse_model(json.loads(raw), CATALOG, "BASE_MODEL_SPEC")
    except json.JSONDecodeError as error:
        raise ConfigError(f"BASE_MODEL_SPEC is not valid JSON: {error}") from error
    except CatalogError as error:
        raise ConfigError(str(error)) from error


def from_environment(env: Mapping[str, str] = os.environ) -> JobConfig:
    raw_method = _required(env, "METHOD")
    if raw_method not in ("lora", "full"):
        raise ConfigError("METHOD must be 'lora' or 'full'")
    method: Method = "lora" if raw_method == "lora" else "full"
    raw_objective = env.get("OBJECTIVE", "").strip() or "supervised"
    if raw_objective not in OBJECTIVES:
        raise ConfigError(f"OBJECTIVE must be one of {', '.join(OBJECTIVES)}, not {raw_objective!r}")
    objective: Objective = "dpo" if raw_objective == "dpo" else "supervised"
    try:
        raw = json.loads(env.get("HYPERPARAMETERS") or "{}")
    except json.JSONDecodeError as error:
        raise ConfigError(f"HYPERPARAMETERS is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError("HYPERPARAMETERS must be a JSON object")
    # The operator's cadence of metrics events (the local platform's 2 s); never the tenant's to set.
    interval = env.get("FT_METRICS_INTERVAL_SECONDS", "").strip()
    if interval and "metrics_interval_seconds" not in raw:
        try:
            raw["metrics_interval_seconds"] = float(interval)
        except ValueError as error:
            raise ConfigError(f"FT_METRICS_INTERVAL_SECONDS must be a number, not {interval!r}") from error
    model = base_model_from_environment(env)
    if model is not None and method not in model.methods:
        raise ConfigError(f"base model {model.name!r} can not be trained with method {method!r}")
    family = model.family if model is not None else env.get("MODEL_FAMILY") or None
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"MODEL_FAMILY must be one of {', '.join(FAMILIES)}")
    hyperparameters = parse_hyperparameters(raw, model)
    if model is not None:
        hyperparameters = with_model_learning_rate(hyperparameters, method, model)
    return JobConfig(
        job_id=_required(env, "JOB_ID"),
        tenant_id=_required(env, "TENANT_ID"),
        method=method,
        base_model_uri=_required(env, "BASE_MODEL_URI"),
        training_file_uri=_required(env, "TRAINING_FILE_URI"),
        validation_file_uri=env.get("VALIDATION_FILE_URI") or None,
        output_uri=_required(env, "OUTPUT_URI").rstrip("/") + "/",
        hyperparameters=hyperparameters,
        jobs_table=env.get("JOBS_TABLE") or None,
        events_table=env.get("EVENTS_TABLE") or None,
        family=family,  # type: ignore[arg-type]
        base_model=model,
        objective=objective,
        init_model_uri=env.get("INIT_MODEL_URI", "").strip() or None,
        training_file_etag=env.get("TRAINING_FILE_ETAG", "").strip() or None,
        validation_file_etag=env.get("VALIDATION_FILE_ETAG", "").strip() or None,
    )
