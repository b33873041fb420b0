"""The contract fixtures (contract/fixtures/*.json), checked against the Python side; vitest checks the
same files against the TypeScript side (test/unit/contract/contract.test.ts)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ft_contract import CatalogError, load_catalog, load_platform
from ft_contract.catalog import parse_catalog
from ft_contract.files import contract_dir, read_json

CASES = read_json("fixtures/platform-cases.json")
CATALOG_CASES = read_json("fixtures/catalog-cases.json")["cases"]
platform = load_platform()


def test_dataset_and_artifact_keys() -> None:
    for case in CASES["datasetObjectKey"]:
        assert platform.dataset_object_key(case["tenantId"], case["fileId"]) == case["key"]
    for case in CASES["resultsFileObjectKey"]:
        assert platform.results_file_object_key(case["tenantId"], case["fileId"]) == case["key"]
    for case in CASES["jobArtifactKeys"]:
        root = platform.job_root(case["tenantId"], case["jobId"])
        assert root == case["root"]
        assert root + platform.checkpoints_dir == case["checkpoints"]
        assert root + platform.result_dir(case["method"]) == case["result"]
        assert root + platform.metrics_name == case["metrics"]
        assert root + platform.result_summary_name == case["resultSummary"]
        assert root + platform.results_csv_name == case["resultsCsv"]


def test_base_model_and_checkpoint_prefixes() -> None:
    for case in CASES["baseModelPrefix"]:
        assert platform.base_model_prefix(case["name"]) == case["prefix"]
    for case in CASES["checkpointPrefix"]:
        assert platform.checkpoint_prefix(case["step"]) == case["prefix"]
    for case in CASES["checkpointStep"]:
        assert platform.checkpoint_step(case["key"]) == case["step"]


def test_event_keys() -> None:
    for case in CASES["jobKey"]:
        assert platform.job_key(case["tenantId"], case["jobId"]) == case["key"]
    for case in CASES["eventKey"]:
        if case["key"] is None:
            with pytest.raises(ValueError):
                platform.event_key(case["millis"], case["hex"])
        else:
            assert platform.event_key(case["millis"], case["hex"]) == case["key"]


@pytest.mark.parametrize("case", CASES["manifests"], ids=lambda case: json.dumps(case["manifest"]))
def test_manifests(case: dict[str, Any]) -> None:
    assert (platform.manifest_problems(case["manifest"]) == []) is case["valid"]


def test_exit_codes_statuses_and_headers() -> None:
    for case in CASES["failureCodes"]:
        assert platform.failure_code(case["exitCode"]) == case["code"]
    assert {name: platform.exit_code(name) for name in CASES["exitCodes"]} == CASES["exitCodes"]
    assert list(platform.job_statuses) == CASES["jobStatuses"]
    assert list(platform.terminal_statuses) == CASES["terminalStatuses"]
    assert {name: platform.header(name) for name in CASES["headers"]} == CASES["headers"]


def _changed(case: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(json.loads((contract_dir() / "catalog.json").read_text()))

    def walk(path: str) -> tuple[Any, str | int]:
        *parts, last = path.split(".")
        node = doc
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, int(last) if isinstance(node, list) else last

    for path, value in case.get("set", {}).items():
        node, key = walk(path)
        node[key] = value
    for path in case.get("delete", []):
        node, key = walk(path)
        del node[key]
    if "append" in case:
        doc["models"].append(case["append"])
    return doc


@pytest.mark.parametrize("case", CATALOG_CASES, ids=lambda case: case["name"])
def test_catalog_cases(case: dict[str, Any]) -> None:
    if case["valid"]:
        parse_catalog(_changed(case))
    else:
        with pytest.raises(CatalogError):
            parse_catalog(_changed(case))


def test_the_catalog_loads_with_every_model() -> None:
    catalog = load_catalog()
    names = [model["name"] for model in read_json("catalog.json")["models"]]
    assert [model.name for model in catalog.models] == names
    tiny = catalog.model("tiny-chat")
    assert tiny is not None and catalog.base_learning_rate("lora", tiny) == 4e-3
    assert catalog.base_learning_rate("full") == 1e-5


# vLLM's accepted --max-lora-rank values (vllm/config/lora.py, LoRAConfig's possible_max_ranks, v0.11).
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def test_the_largest_lora_rank_is_one_vllm_serves() -> None:
    # The inference image passes it as --max-lora-rank (batch-images/inference/entrypoint.sh): any
    # adapter a job may train must load there.
    catalog = load_catalog()
    rank = catalog.hyperparameters["lora_r"]

    assert catalog.max_lora_rank in VLLM_MAX_LORA_RANKS
    assert rank.min is not None and rank.min >= 1
    assert isinstance(rank.default, int) and rank.min <= rank.default <= catalog.max_lora_rank
