"""The trainer's configuration reads contract/catalog.json: the same bounds, defaults, base learning
rates and families as the API, and the base model's entry the dispatcher sends (BASE_MODEL_SPEC)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ft_contract.files import read_json
from ft_trainer.chat_format import FAMILIES
from ft_trainer.config import CATALOG, ConfigError, Hyperparameters, from_environment, parse_hyperparameters

ADDED = read_json("fixtures/added-model.json")["models"]


def _env(**extra: str) -> dict[str, str]:
    return {
        "JOB_ID": "ftjob-1",
        "TENANT_ID": "tn_a",
        "METHOD": "lora",
        "BASE_MODEL_URI": "s3://art/base-models/fixture-glm-2b/",
        "TRAINING_FILE_URI": "s3://ds/tenants/tn_a/files/file-1.jsonl",
        "OUTPUT_URI": "s3://art/tenants/tn_a/jobs/ftjob-1/",
        **extra,
    }


def _spec(name: str = "fixture-glm-2b", **changes: Any) -> str:
    return json.dumps({"name": name, **ADDED[name], **changes})


def test_every_family_of_the_catalog_has_a_chat_template() -> None:
    assert set(FAMILIES) == set(CATALOG.families)


def test_defaults_are_the_catalogs() -> None:
    defaults = Hyperparameters()
    for name, spec in CATALOG.hyperparameters.items():
        assert getattr(defaults, name) == spec.default, name


@pytest.mark.parametrize(
    "name", [n for n, s in CATALOG.hyperparameters.items() if s.type in ("integer", "number")]
)
def test_numeric_bounds_are_the_catalogs(name: str) -> None:
    spec = CATALOG.hyperparameters[name]
    assert spec.min is not None and spec.max is not None
    parse_hyperparameters({name: spec.max})
    with pytest.raises(ConfigError, match=name):
        parse_hyperparameters({name: spec.max + 1})
    if spec.exclusive_min:
        with pytest.raises(ConfigError, match=name):
            parse_hyperparameters({name: spec.min})
    else:
        parse_hyperparameters({name: spec.min})


def test_the_bounds_that_used_to_disagree_with_the_api() -> None:
    # The API allows max_seq_length 64 – 1,048,576 and any positive multiplier; so does the trainer now.
    assert parse_hyperparameters({"max_seq_length": 1_048_576}).max_seq_length == 1_048_576
    with pytest.raises(ConfigError):
        parse_hyperparameters({"max_seq_length": 32})
    assert parse_hyperparameters({"learning_rate_multiplier": 1e-9}).learning_rate_multiplier == 1e-9
    with pytest.raises(ConfigError):
        parse_hyperparameters({"learning_rate_multiplier": 0})


def test_a_model_added_by_an_override_reaches_the_trainer() -> None:
    config = from_environment(
        _env(BASE_MODEL_SPEC=_spec(), HYPERPARAMETERS='{"learning_rate_multiplier": 2}')
    )
    assert config.family == "glm4"
    assert config.base_model is not None and config.base_model.max_seq_length == 3072
    # Its own base rate (5e-4) times the multiplier, where the method's default would be 2e-4.
    assert config.hyperparameters.learning_rate_for("lora") == pytest.approx(1e-3)
    assert CATALOG.lora_targets(config.family) == "all-linear"


def test_the_models_limits_hold_in_the_trainer() -> None:
    with pytest.raises(ConfigError, match="at most 3072"):
        from_environment(_env(BASE_MODEL_SPEC=_spec(), HYPERPARAMETERS='{"max_seq_length": 4096}'))
    with pytest.raises(ConfigError, match="method 'full'"):
        from_environment(_env(BASE_MODEL_SPEC=_spec(), METHOD="full"))
    with pytest.raises(ConfigError, match="family"):
        from_environment(_env(BASE_MODEL_SPEC=_spec(family="llama")))
    with pytest.raises(ConfigError, match="BASE_MODEL_SPEC"):
        from_environment(_env(BASE_MODEL_SPEC="{not json"))


def test_a_standard_model_uses_the_methods_base_rate(tmp_path: Path) -> None:
    glm = next(m for m in read_json("catalog.json")["models"] if m["name"] == "chatglm3-6b")
    config = from_environment(
        _env(BASE_MODEL_SPEC=json.dumps(glm), HYPERPARAMETERS='{"learning_rate_multiplier": 2}')
    )
    assert config.hyperparameters.learning_rate is None
    assert config.hyperparameters.learning_rate_for("lora") == pytest.approx(
        2 * CATALOG.methods["lora"].base_learning_rate
    )


# --- the objective (DPO) and the model a job starts from ---------------------------------------------


def test_the_objective_is_supervised_unless_dpo_is_asked_for() -> None:
    assert from_environment(_env()).objective == "supervised"
    assert from_environment(_env(OBJECTIVE="dpo")).objective == "dpo"
    with pytest.raises(ConfigError, match="OBJECTIVE must be one of supervised, dpo"):
        from_environment(_env(OBJECTIVE="ppo"))


def test_an_init_model_must_be_a_result_directory_of_the_method_inside_the_tenants_prefix(
    tmp_path: Path,
) -> None:
    from ft_trainer.entrypoint import locate

    sft = "s3://art/tenants/tn_a/jobs/ftjob-0/"
    config = from_environment(_env(OBJECTIVE="dpo", INIT_MODEL_URI=sft + "adapter"))
    assert config.init_model_uri == sft + "adapter"
    files = locate(config, tmp_path)
    assert str(files.init) == sft + "adapter/" and files.init_dir == tmp_path / "init-model"
    assert locate(from_environment(_env()), tmp_path).init is None
    full = from_environment(_env(METHOD="full", INIT_MODEL_URI=sft + "model/"))
    assert str(locate(full, tmp_path).init) == sft + "model/"
    refused = {
        "s3://art/tenants/tn_b/jobs/ftjob-0/adapter/": "outside this tenant",
        "s3://art/tenants/tn_a/../tn_b/jobs/ftjob-0/adapter/": "outside this tenant",
        "/tmp/adapter": "outside this tenant",
        sft + "model/": "adapter/ directory for method 'lora'",
        sft: "adapter/ directory",
    }
    for uri, reason in refused.items():
        with pytest.raises(ConfigError, match=reason):
            locate(from_environment(_env(INIT_MODEL_URI=uri)), tmp_path)


def test_the_operator_sets_the_metrics_cadence_within_the_catalogs_bounds() -> None:
    assert (
        from_environment(_env()).hyperparameters.metrics_interval_seconds
        == CATALOG.hyperparameters["metrics_interval_seconds"].default
    )
    assert (
        from_environment(_env(FT_METRICS_INTERVAL_SECONDS="2")).hyperparameters.metrics_interval_seconds == 2
    )
    with pytest.raises(ConfigError, match="FT_METRICS_INTERVAL_SECONDS must be a number"):
        from_environment(_env(FT_METRICS_INTERVAL_SECONDS="often"))
    with pytest.raises(ConfigError, match="metrics_interval_seconds"):
        from_environment(_env(FT_METRICS_INTERVAL_SECONDS="-1"))
