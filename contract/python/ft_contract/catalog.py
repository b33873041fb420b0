"""`contract/catalog.json`, loaded and validated: the same rules as `lambdas/core/catalog/` (zod), so a
file one side accepts the other accepts too (`contract/fixtures/catalog-cases.json` checks both)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal, Mapping

from .files import read_json
from .platform import load_platform

Method = Literal["lora", "full"]
METHODS: tuple[Method, ...] = ("lora", "full")
# What a job optimises (OpenAI's method.type); each trains with either method.
Objective = Literal["supervised", "dpo"]
OBJECTIVES: tuple[Objective, ...] = ("supervised", "dpo")


_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FAMILY_NAME = re.compile(r"^[a-z][a-z0-9]*$")
_HYPERPARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_WEIGHTS_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*/$")

# (field, minimum, maximum) of a model's architecture, all integers (as in base-models.ts).
_ARCHITECTURE_BOUNDS = (
    ("layers", 1, 1024),
    ("hiddenSize", 1, 1_048_576),
    ("attentionHeads", 1, 4096),
    ("kvHeads", 1, 4096),
    ("intermediateSize", 1, 4_194_304),
    ("vocabSize", 1, 16_777_216),
)


class CatalogError(ValueError):
    """The catalog (or a model entry) breaks the contract; the message names the path."""


@dataclass(frozen=True)
class HyperparameterSpec:
    name: str
    type: Literal["integer", "number", "enum", "boolean"]
    default: Any
    api: bool
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    values: tuple[str, ...] = ()

    def check(self, value: object) -> object:
        """`value` if it is in bounds; raises CatalogError with the bound otherwise."""
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise CatalogError(f"{self.name} must be true or false")
            return value
        if self.type == "enum":
            if value not in self.values:
                raise CatalogError(f"{self.name} must be one of {', '.join(map(repr, self.values))}")
            return value
        assert self.min is not None and self.max is not None
        low = f"greater than {_num(self.min)}" if self.exclusive_min else f"from {_num(self.min)}"
        kind = "an integer" if self.type == "integer" else "a number"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (self.type == "integer" and int(value) != value)
            or (value <= self.min if self.exclusive_min else value < self.min)
            or value > self.max
        ):
            raise CatalogError(f"{self.name} must be {kind} {low} to {_num(self.max)}, got {value!r}")
        return int(value) if self.type == "integer" else float(value)


@dataclass(frozen=True)
class MethodDefaults:
    base_learning_rate: float
    hyperparameters: tuple[str, ...]


@dataclass(frozen=True)
class MethodSpec:
    gpus: int
    min_gpu_memory_gib: float
    instance_type: str
    price_per_1k_tokens_usd: float
    base_learning_rate: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    methods: Mapping[str, MethodSpec]
    weights_prefix: str
    max_seq_length: int
    parameters: int
    created: int
    owned_by: str
    architecture: Mapping[str, int | bool] | None = None


@dataclass(frozen=True)
class Catalog:
    methods: Mapping[str, MethodDefaults]
    # The request hyperparameters each objective adds to its method's (DPO's beta).
    objectives: Mapping[str, tuple[str, ...]]
    families: Mapping[str, list[str] | str]
    hyperparameters: Mapping[str, HyperparameterSpec]
    auto: Mapping[str, Any]
    models: tuple[ModelSpec, ...] = field(default=())

    def model(self, name: str) -> ModelSpec | None:
        return next((model for model in self.models if model.name == name), None)

    def lora_targets(self, family: str) -> list[str] | str:
        return self.families[family]

    def base_learning_rate(self, method: Method, model: ModelSpec | None = None) -> float:
        """The rate `learning_rate_multiplier` 1 means: the model's own for the method, else the method's."""
        spec = model.methods.get(method) if model else None
        if spec is not None and spec.base_learning_rate is not None:
            return spec.base_learning_rate
        return self.methods[method].base_learning_rate

    @property
    def max_lora_rank(self) -> int:
        """The largest `lora_r` a job may train with: the inference image's `--max-lora-rank` (vLLM
        refuses to load an adapter of a larger rank, so no model trains that cannot be served)."""
        rank = self.hyperparameters["lora_r"]
        assert rank.max is not None
        return int(rank.max)

    @property
    def max_base_learning_rate(self) -> float:
        """With the largest multiplier, a model's own base rate must stay a valid `learning_rate`."""
        rate, multiplier = (
            self.hyperparameters["learning_rate"],
            self.hyperparameters["learning_rate_multiplier"],
        )
        assert rate.max is not None and multiplier.max is not None
        return rate.max / multiplier.max


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _object(value: object, path: str, required: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(value, dict):
        raise CatalogError(f"{path}: must be an object")
    unknown = sorted(set(value) - required - optional)
    if unknown:
        raise CatalogError(f"{path}: unknown field '{unknown[0]}'")
    missing = sorted(required - set(value))
    if missing:
        raise CatalogError(f"{path}.{missing[0]}: required")
    return value


def _number(
    value: object, path: str, low: float, high: float, *, integer: bool = False, above: bool = False
) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CatalogError(f"{path}: must be a number")
    if integer and int(value) != value:
        raise CatalogError(f"{path}: must be an integer")
    if (value <= low if above else value < low) or value > high:
        raise CatalogError(
            f"{path}: must be {'above' if above else 'at least'} {_num(low)} and at most {_num(high)}"
        )
    return value


def _string(value: object, path: str, pattern: re.Pattern[str] | None = None, max_length: int = 1024) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise CatalogError(f"{path}: must be a non-empty string of at most {max_length} characters")
    if pattern is not None and not pattern.match(value):
        raise CatalogError(f"{path}: '{value}' is not valid")
    return value


def _hyperparameter(name: str, raw: object) -> HyperparameterSpec:
    path = f"hyperparameters.{name}"
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("integer", "number"):
        spec = _object(raw, path, {"type", "min", "max", "default", "api"}, {"exclusiveMin"})
        integer = kind == "integer"
        low = _number(spec["min"], f"{path}.min", -math.inf, math.inf, integer=integer)
        high = _number(spec["max"], f"{path}.max", -math.inf, math.inf, integer=integer)
        if low > high:
            raise CatalogError(f"{path}: min must not exceed max")
        default = spec["default"]
        if default is not None:
            _number(default, f"{path}.default", -math.inf, math.inf)
        exclusive = spec.get("exclusiveMin", False)
        if not isinstance(exclusive, bool) or not isinstance(spec["api"], bool):
            raise CatalogError(f"{path}: exclusiveMin and api must be true or false")
        return HyperparameterSpec(name, kind, default, spec["api"], low, high, exclusive)
    if kind == "enum":
        spec = _object(raw, path, {"type", "values", "default", "api"})
        values = spec["values"]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise CatalogError(f"{path}.values: must be a non-empty list of strings")
        if not isinstance(spec["default"], str) or not isinstance(spec["api"], bool):
            raise CatalogError(f"{path}: default must be a string and api true or false")
        return HyperparameterSpec(name, "enum", spec["default"], spec["api"], values=tuple(values))
    if kind == "boolean":
        spec = _object(raw, path, {"type", "default", "api"})
        if not isinstance(spec["default"], bool) or not isinstance(spec["api"], bool):
            raise CatalogError(f"{path}: default and api must be true or false")
        return HyperparameterSpec(name, "boolean", spec["default"], spec["api"])
    raise CatalogError(f"{path}.type: must be integer, number, enum or boolean")


def _method_spec(raw: object, path: str, max_base_learning_rate: float) -> MethodSpec:
    spec = _object(
        raw, path, {"gpus", "minGpuMemoryGiB", "instanceType", "pricePer1kTokensUsd"}, {"baseLearningRate"}
    )
    rate = spec.get("baseLearningRate")
    return MethodSpec(
        gpus=_number(spec["gpus"], f"{path}.gpus", 0, 256, integer=True),
        min_gpu_memory_gib=_number(spec["minGpuMemoryGiB"], f"{path}.minGpuMemoryGiB", 0, 1024),
        instance_type=_string(spec["instanceType"], f"{path}.instanceType", _INSTANCE_TYPE),
        price_per_1k_tokens_usd=_number(spec["pricePer1kTokensUsd"], f"{path}.pricePer1kTokensUsd", 0, 1000),
        base_learning_rate=None
        if rate is None
        else _number(rate, f"{path}.baseLearningRate", 0, max_base_learning_rate, above=True),
    )


def parse_model(raw: object, catalog: Catalog, path: str | None = None) -> ModelSpec:
    """One model entry, as the file lists it or as the dispatcher sends it (`BASE_MODEL_SPEC`)."""
    name = raw.get("name") if isinstance(raw, dict) else None
    path = path or f"models.{name}"
    entry = _object(
        raw,
        path,
        {"name", "family", "methods", "maxSeqLength", "parameters", "ownedBy"},
        {"weightsPrefix", "architecture", "created"},
    )
    name = _string(entry["name"], f"{path}.name", _MODEL_NAME)
    family = entry["family"]
    if family not in catalog.families:
        raise CatalogError(f"{path}.family: must be one of {', '.join(catalog.families)}")
    methods_raw = _object(entry["methods"], f"{path}.methods", set(), set(METHODS))
    if not methods_raw:
        raise CatalogError(f"{path}.methods: needs at least one of lora, full")
    methods = {
        method: _method_spec(spec, f"{path}.methods.{method}", catalog.max_base_learning_rate)
        for method, spec in methods_raw.items()
    }
    weights_prefix = entry.get("weightsPrefix", load_platform().base_model_prefix(name))
    _string(weights_prefix, f"{path}.weightsPrefix", _WEIGHTS_PREFIX)
    if ".." in weights_prefix.split("/"):
        raise CatalogError(f"{path}.weightsPrefix: must not contain '..'")
    # Tenants' keys are theirs alone: the trainer and inference roles may read a model's weights prefix.
    tenant_keys = load_platform().tenant_prefix("").rstrip("/")
    if weights_prefix.startswith(tenant_keys):
        raise CatalogError(f"{path}.weightsPrefix: must not be under '{tenant_keys}'")
    limits = catalog.hyperparameters["max_seq_length"]
    assert limits.min is not None and limits.max is not None
    architecture = entry.get("architecture")
    if architecture is not None:
        shape = _object(
            architecture, f"{path}.architecture", {f for f, _, _ in _ARCHITECTURE_BOUNDS} | {"tiedEmbeddings"}
        )
        for key, low, high in _ARCHITECTURE_BOUNDS:
            _number(shape[key], f"{path}.architecture.{key}", low, high, integer=True)
        if not isinstance(shape["tiedEmbeddings"], bool):
            raise CatalogError(f"{path}.architecture.tiedEmbeddings: must be true or false")
        if shape["attentionHeads"] % shape["kvHeads"] != 0:
            raise CatalogError(f"{path}.architecture.kvHeads: kvHeads must divide attentionHeads")
    return ModelSpec(
        name=name,
        family=family,
        methods=methods,
        weights_prefix=weights_prefix,
        max_seq_length=_number(
            entry["maxSeqLength"], f"{path}.maxSeqLength", limits.min, limits.max, integer=True
        ),
        parameters=_number(entry["parameters"], f"{path}.parameters", 0, math.inf, integer=True, above=True),
        created=_number(entry.get("created", 0), f"{path}.created", 0, math.inf, integer=True),
        owned_by=_string(entry["ownedBy"], f"{path}.ownedBy", max_length=64),
        architecture=architecture,
    )


def parse_catalog(raw: object) -> Catalog:
    """Validates a whole catalog file; raises CatalogError naming the first bad path."""
    doc = _object(
        raw,
        "(root)",
        {"methods", "objectives", "families", "hyperparameters", "auto", "models"},
        {"$comment"},
    )
    hyperparameters: dict[str, HyperparameterSpec] = {}
    if not isinstance(doc["hyperparameters"], dict):
        raise CatalogError("hyperparameters: must be an object")
    for name, spec in doc["hyperparameters"].items():
        _string(name, f"hyperparameters.{name}", _HYPERPARAMETER_NAME)
        hyperparameters[name] = _hyperparameter(name, spec)
    methods_raw = _object(doc["methods"], "methods", set(METHODS))
    objectives_raw = _object(doc["objectives"], "objectives", set(OBJECTIVES), {"$comment"})
    # What a request may set (either method's or objective's list), the seed and the absolute learning
    # rate are numbers the code computes with.
    listed = [
        name
        for group in (methods_raw, objectives_raw)
        for key, spec in group.items()
        if key != "$comment" and isinstance(spec, dict)
        for name in spec.get("hyperparameters") or []
    ]
    for name in dict.fromkeys([*listed, "seed", "learning_rate"]):
        if hyperparameters.get(name) is None or hyperparameters[name].type not in ("integer", "number"):
            raise CatalogError(f"hyperparameters.{name}: required numeric hyperparameter")

    methods: dict[str, MethodDefaults] = {}
    for method in METHODS:
        spec = _object(methods_raw[method], f"methods.{method}", {"baseLearningRate", "hyperparameters"})
        names = spec["hyperparameters"]
        if not isinstance(names, list) or not names:
            raise CatalogError(f"methods.{method}.hyperparameters: must be a non-empty list")
        for name in names:
            if name not in hyperparameters or not hyperparameters[name].api:
                raise CatalogError(
                    f"methods.{method}.hyperparameters: '{name}' is not a hyperparameter a request may set"
                )
        rate = _number(
            spec["baseLearningRate"], f"methods.{method}.baseLearningRate", 0, math.inf, above=True
        )
        methods[method] = MethodDefaults(rate, tuple(names))

    objectives: dict[str, tuple[str, ...]] = {}
    for objective in OBJECTIVES:
        names = _object(objectives_raw[objective], f"objectives.{objective}", {"hyperparameters"})[
            "hyperparameters"
        ]
        if not isinstance(names, list):
            raise CatalogError(f"objectives.{objective}.hyperparameters: must be a list")
        for name in names:
            if name not in hyperparameters or not hyperparameters[name].api:
                raise CatalogError(
                    f"objectives.{objective}.hyperparameters: '{name}' is not a hyperparameter a request may set"
                )
        objectives[objective] = tuple(names)

    if not isinstance(doc["families"], dict):
        raise CatalogError("families: must be an object")
    families: dict[str, list[str] | str] = {}
    for name, spec in doc["families"].items():
        _string(name, f"families.{name}", _FAMILY_NAME)
        targets = _object(spec, f"families.{name}", {"loraTargets"})["loraTargets"]
        if targets != "all-linear" and not (
            isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets)
        ):
            raise CatalogError(f"families.{name}.loraTargets: must be module names or 'all-linear'")
        families[name] = targets

    auto = _object(
        doc["auto"],
        "auto",
        {
            "epochsTarget",
            "epochsMaxAuto",
            "minTargetExamples",
            "maxTargetExamples",
            "batchSizeMax",
            "batchSizeFraction",
            "learningRateMultiplier",
        },
    )
    for key in ("epochsTarget", "epochsMaxAuto", "minTargetExamples", "maxTargetExamples", "batchSizeMax"):
        _number(auto[key], f"auto.{key}", 0, math.inf, integer=True, above=True)
    _number(auto["batchSizeFraction"], "auto.batchSizeFraction", 0, math.inf, above=True)
    rule = _object(
        auto["learningRateMultiplier"], "auto.learningRateMultiplier", {"referenceBatchSize", "min", "max"}
    )
    for key in ("referenceBatchSize", "min", "max"):
        _number(rule[key], f"auto.learningRateMultiplier.{key}", 0, math.inf, above=True)

    # The models are checked against the catalog's own families and bounds.
    catalog = Catalog(
        methods=methods, objectives=objectives, families=families, hyperparameters=hyperparameters, auto=auto
    )
    models_raw = doc["models"]
    if not isinstance(models_raw, list) or not models_raw:
        raise CatalogError("models: must be a non-empty list")
    models: list[ModelSpec] = []
    for raw_model in models_raw:
        model = parse_model(raw_model, catalog)
        if any(seen.name == model.name for seen in models):
            raise CatalogError(f"models: base model '{model.name}' is listed twice")
        models.append(model)
    return replace(catalog, models=tuple(models))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The platform's catalog file, validated once per process."""
    return parse_catalog(read_json("catalog.json"))
