"""The proxy's pure routing: which name vLLM serves a request under, and the adapter table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ft_inference.routing import (
    AdapterTable,
    Deployment,
    RouteError,
    adapter_dir,
    rewrite_body,
    rewrite_event_line,
    route,
)

BASE = Deployment("qwen2.5-7b-instruct", "qwen2.5-7b-instruct")
FULL = Deployment("chatglm_12b", "chatglm_12b", "s3://artifacts/tenants/t1/jobs/ftjob-9/model/")
ADAPTER = "s3://artifacts/tenants/t1/jobs/ftjob-1/adapter/"


def lora(uri: str = ADAPTER, base: str = "qwen2.5-7b-instruct") -> dict[str, str]:
    return {"x-ft-base-model": base, "x-ft-method": "lora", "x-ft-artifact-uri": uri}


def test_a_base_model_request_goes_to_the_served_name() -> None:
    target = route("qwen2.5-7b-instruct", {}, BASE)

    assert (target.kind, target.upstream_model, target.artifact) == ("base", "qwen2.5-7b-instruct", None)


def test_a_lora_request_is_served_under_its_model_code_with_a_normalised_prefix() -> None:
    target = route("ft:qwen:acme:x1", lora(ADAPTER.rstrip("/")), BASE)

    assert (target.kind, target.upstream_model, target.artifact) == ("lora", "ft:qwen:acme:x1", ADAPTER)


def test_a_full_model_request_goes_to_its_own_deployment_only() -> None:
    headers = {
        "x-ft-base-model": "chatglm_12b",
        "x-ft-method": "full",
        "x-ft-artifact-uri": FULL.full_artifact,
    }

    target = route("ft:glm:acme:f1", headers, FULL)  # type: ignore[arg-type]

    assert (target.kind, target.upstream_model, target.model) == ("full", "chatglm_12b", "ft:glm:acme:f1")
    other = {**headers, "x-ft-artifact-uri": "s3://artifacts/tenants/t1/jobs/ftjob-8/model/"}
    with pytest.raises(RouteError) as error:
        route("ft:glm:acme:f2", other, FULL)  # type: ignore[arg-type]
    assert error.value.status == 404 and error.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("model", "headers", "deployment", "status"),
    [
        ("llama-70b", {}, BASE, 404),  # another base model
        ("chatglm_12b", {}, FULL, 404),  # a full model's deployment serves nothing else
        ("ft:x", lora(base="glm-4-9b-chat"), BASE, 404),  # an adapter of another base
        ("ft:x", lora(), FULL, 404),
        ("ft:x", {"x-ft-method": "lora"}, BASE, 400),  # a method without an artifact
        ("ft:x", {**lora(), "x-ft-method": "qlora"}, BASE, 400),
        ("ft:x", lora("file:///etc/"), BASE, 400),
        ("ft:x", lora("s3://artifacts/tenants/../x/"), BASE, 400),
        ("", {}, BASE, 400),
    ],
)
def test_refuses_what_this_deployment_cannot_serve(
    model: str, headers: dict[str, str], deployment: Deployment, status: int
) -> None:
    with pytest.raises(RouteError) as error:
        route(model, headers, deployment)

    assert error.value.status == status
    assert set(error.value.envelope()["error"]) == {"message", "type", "param", "code"}


def test_adapter_dirs_are_one_per_uri_and_safe_names(tmp_path: Path) -> None:
    first = adapter_dir(tmp_path, ADAPTER)

    assert first == adapter_dir(tmp_path, ADAPTER.rstrip("/"))
    assert first != adapter_dir(tmp_path, ADAPTER.replace("ftjob-1", "ftjob-2"))
    assert first.parent == tmp_path and first.name.isalnum()


def test_the_table_evicts_least_recently_used_idle_adapters_only(tmp_path: Path) -> None:
    table = AdapterTable(max_adapters=2)
    a, _ = table.add("a", "s3://b/a/", tmp_path / "a")
    table.add("b", "s3://b/b/", tmp_path / "b")
    a.in_flight = 1  # serving a request: never evicted
    assert table.get("b", "s3://b/b/") is not None  # b is now the most recent

    _, evicted = table.add("c", "s3://b/c/", tmp_path / "c")

    assert [e.name for e in evicted] == ["b"]
    assert table.names() == ["a", "c"]
    assert table.get("a", "s3://b/other/") is None and table.stale("a", "s3://b/other/") is a


def test_rewrites_the_body_model_and_event_lines() -> None:
    assert json.loads(rewrite_body({"model": "ft:x", "stream": True}, "base")) == {
        "model": "base",
        "stream": True,
    }
    line = b'data: {"id":"c1","model":"chatglm_12b","choices":[]}\n'
    assert (
        rewrite_event_line(line, "ft:glm:acme:f1")
        == b'data: {"id":"c1","model":"ft:glm:acme:f1","choices":[]}\n'
    )
    assert rewrite_event_line(b"data: [DONE]\n", "m") == b"data: [DONE]\n"
    assert rewrite_event_line(b"\n", "m") == b"\n"
