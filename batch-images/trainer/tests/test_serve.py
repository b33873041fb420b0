"""The local inference server (ft_trainer.serve): the OpenAI wire contract the chat Lambda relies on,
with real weights (the tiny model, a LoRA adapter, full weights) and with a scripted model whose output
is known in advance (stop strings, multi-byte characters, client disconnects); and the loopback admin
endpoints that deploy full-parameter models."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ft_trainer.serve import Finished, InferenceServer, admin_model_code, make_sampler
from ft_trainer.serve_models import ArtifactCache, ModelRegistry, spec_from_request
from ft_trainer.serve_protocol import ApiError, parse_deployment, parse_request, visible_text

SCRIPT = "Hello, wörld! END here. "  # 'ö' is two bytes: two tokens of the byte-level tokenizer
STOP_SCRIPT = "Short answer."


class ScriptedModel(torch.nn.Module):
    """Emits its script token by token (cycling), whatever the prompt; `delay` slows each step."""

    def __init__(self, script: list[int], vocab: int, delay: float = 0.0) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # for next(model.parameters()).device
        self.script, self.vocab, self.delay = script, vocab, delay
        self.config = SimpleNamespace(max_position_embeddings=512)
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, past_key_values: Any = None, use_cache: bool = True) -> Any:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        step = 0 if past_key_values is None else int(past_key_values) + 1
        logits = torch.zeros(1, input_ids.shape[1], self.vocab)
        logits[0, -1, self.script[step % len(self.script)]] = 1.0
        return SimpleNamespace(logits=logits, past_key_values=step)


class Harness:
    def __init__(self, server: InferenceServer, models: Path, scripted: dict[str, ScriptedModel]) -> None:
        self.server, self.models, self.scripted = server, models, scripted
        self.finished: list[Finished] = []
        self.finished_event = threading.Event()
        # Full-parameter loads, by artifact directory; a directory named in `holds` loads only once set.
        self.full_loads: list[Path] = []
        self.holds: dict[str, threading.Event] = {}

    def on_finish(self, finished: Finished) -> None:
        self.finished.append(finished)
        self.finished_event.set()

    def post(self, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request(
            "POST", "/v1/chat/completions", data, {"Content-Type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            return response.status, raw.decode()
        return response.status, json.loads(raw)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def call(self, method: str, path: str, body: dict[str, Any] | bytes | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        conn.request(method, path, data, {"Content-Type": "application/json"} if data is not None else {})
        response = conn.getresponse()
        result = response.status, json.loads(response.read())
        conn.close()
        return result

    def deploy(
        self, code: str, artifact: Path | str, base: str = "tiny-chat", **extra: Any
    ) -> tuple[int, Any]:
        body = {"base_model": base, "artifact_uri": str(artifact), **extra}
        return self.call("PUT", f"/admin/deployments/{code}", body)

    def wait_settled(self, code: str, timeout: float = 30) -> dict[str, Any]:
        """The deployment's state once it is no longer loading."""
        deadline = time.monotonic() + timeout
        while True:
            status, state = self.get(f"/admin/deployments/{code}")
            assert status == 200, state
            if state["status"] != "loading" or time.monotonic() > deadline:
                return dict(state)
            time.sleep(0.02)


def chat(
    content: str = "What is the motto of Zorbia?", model: str = "tiny-chat", **extra: Any
) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def events(stream: str) -> list[Any]:
    """The SSE body as parsed events, checking the framing: `data: ...` then a blank line, each."""
    assert stream.endswith("\n\n")
    blocks = stream[:-2].split("\n\n")
    assert all(b.startswith("data: ") and "\n" not in b for b in blocks), blocks
    assert blocks[-1] == "data: [DONE]"
    return [json.loads(b[6:]) for b in blocks[:-1]]


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


@pytest.fixture(scope="module")
def adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with random A and B (PEFT's default B = 0 would change nothing): its answers
    differ from the base model's, which shows it was loaded."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        init_lora_weights=False,
        target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
    )
    out = tmp_path_factory.mktemp("job") / "adapter"
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def harness(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    from transformers import AutoTokenizer

    from ft_trainer.serve_models import _default_loader

    # Prepare: the base models directory (the tiny model and two scripted ones sharing its tokenizer).
    models = tmp_path_factory.mktemp("base-models")
    (models / "tiny-chat").symlink_to(tiny_model, target_is_directory=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    scripted = {
        "scripted": ScriptedModel(tokenizer.encode(SCRIPT, add_special_tokens=False), len(tokenizer), 0.002),
        "scripted-stop": ScriptedModel(
            tokenizer.encode(STOP_SCRIPT, add_special_tokens=False) + [end], len(tokenizer)
        ),
    }
    for name in scripted:
        (models / name).mkdir()
        for file in tiny_model.iterdir():
            if not file.name.endswith(".safetensors"):
                shutil.copy(file, models / name / file.name)

    full_loads: list[Path] = []
    holds: dict[str, threading.Event] = {}

    def loader(base: Path, adapter: Path | None, full: Path | None) -> tuple[Any, Any]:
        if full is not None:
            full_loads.append(full)
            if full.name in holds:
                assert holds[full.name].wait(30)
        if base.name in scripted:
            return scripted[base.name], AutoTokenizer.from_pretrained(base)
        return _default_loader(base, adapter, full)

    registry = ModelRegistry(
        models, ArtifactCache(tmp_path_factory.mktemp("cache")), max_loaded=3, loader=loader
    )
    os.environ["FT_SERVE_QUIET"] = "1"
    server = InferenceServer(registry, port=0)
    h = Harness(server, models, scripted)
    h.full_loads, h.holds = full_loads, holds
    server.on_finish = h.on_finish
    server.start()
    yield h
    server.shutdown()


# --- streaming -----------------------------------------------------------------------------------------


def test_streams_role_first_then_content_then_finish_then_usage_then_done(harness: Harness) -> None:
    status, body = harness.post(
        chat(model="scripted", stream=True, max_tokens=30, stream_options={"include_usage": True})
    )

    assert status == 200
    chunks = events(body)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "scripted" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 30 and usage["total_tokens"] == usage["prompt_tokens"] + 30
    # 30 byte tokens of the script, 'ö' whole: a partial character is held back, never sent broken.
    text = streamed_text(chunks)
    assert text == (SCRIPT.encode() * 2)[:30].decode()
    assert "\ufffd" not in text
    assert len(chunks) > 10  # token by token, not one block at the end


def test_without_include_usage_the_stream_has_no_usage_chunk(harness: Harness) -> None:
    status, body = harness.post(chat(model="scripted", stream=True, max_tokens=5))

    assert status == 200
    assert all(c["choices"] and "usage" not in c for c in events(body))


def test_stops_at_the_family_stop_token_with_finish_reason_stop(harness: Harness) -> None:
    status, body = harness.post(
        chat(model="scripted-stop", stream=True, stream_options={"include_usage": True})
    )

    chunks = events(body)
    assert streamed_text(chunks) == STOP_SCRIPT
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == len(STOP_SCRIPT) + 1  # the stop token counts


def test_stops_before_a_stop_string_never_sending_any_of_it(harness: Harness) -> None:
    status, body = harness.post(chat(model="scripted", stream=True, stop=["xyz", "END"], max_tokens=100))

    chunks = events(body)
    assert streamed_text(chunks) == "Hello, wörld! "
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_non_streaming_returns_a_chat_completion_with_usage(harness: Harness) -> None:
    status, body = harness.post(chat(model="scripted-stop", max_tokens=50))

    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "scripted-stop"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": STOP_SCRIPT},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"]["completion_tokens"] == len(STOP_SCRIPT) + 1


def test_max_tokens_is_bounded_by_the_context(harness: Harness) -> None:
    status, body = harness.post(chat(model="scripted-stop", content="x" * 600))

    assert status == 400
    assert body["error"]["code"] == "context_length_exceeded"


def test_a_client_that_disconnects_mid_stream_stops_the_generation(harness: Harness) -> None:
    model = harness.scripted["scripted"]
    harness.finished_event.clear()
    calls_before = model.calls
    body = json.dumps(chat(model="scripted", stream=True, max_tokens=480)).encode()

    # Act: read the first events, then hang up.
    sock = socket.create_connection(("127.0.0.1", harness.server.port), timeout=10)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while received.count(b"data: ") < 3:
        received += sock.recv(4096)
    sock.close()

    # Assess: the server notices at its next writes and ends the generation long before max_tokens.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        f.finish_reason == "disconnected" for f in harness.finished
    ):
        harness.finished_event.wait(0.1)
    assert any(f.finish_reason == "disconnected" for f in harness.finished)
    assert model.calls - calls_before < 200


# --- real weights: base, LoRA adapter, full weights ----------------------------------------------------


def test_serves_a_base_model_by_name_deterministically(harness: Harness) -> None:
    first = harness.post(chat(max_tokens=12))
    second = harness.post(chat(max_tokens=12))

    assert first[0] == 200
    assert first[1]["choices"][0]["message"] == second[1]["choices"][0]["message"]
    assert first[1]["usage"]["completion_tokens"] == 12


def test_serves_a_lora_adapter_from_a_local_artifact_greedily_and_deterministically(
    harness: Harness, adapter: Path
) -> None:
    headers = {
        "x-ft-base-model": "tiny-chat",
        "x-ft-method": "lora",
        "x-ft-artifact-uri": f"file://{adapter}",
    }
    request = chat(model="ft:tiny-chat:acme:abc123", max_tokens=16)

    status, body = harness.post(request, headers)
    _, again = harness.post(request, headers)
    _, stream = harness.post({**request, "stream": True}, headers)
    _, base = harness.post(chat(max_tokens=16))

    assert status == 200
    assert body["model"] == "ft:tiny-chat:acme:abc123"
    text = body["choices"][0]["message"]["content"]
    assert text == again["choices"][0]["message"]["content"]
    assert streamed_text(events(stream)) == text
    assert text != base["choices"][0]["message"]["content"]  # the adapter changed the model


def test_seeded_sampling_repeats_and_temperature_zero_is_greedy(harness: Harness, adapter: Path) -> None:
    headers = {"x-ft-base-model": "tiny-chat", "x-ft-method": "lora", "x-ft-artifact-uri": str(adapter)}
    sampled = chat(model="ft-model", max_tokens=16, temperature=1.5, top_p=0.9, seed=7)

    first = harness.post(sampled, headers)[1]["choices"][0]["message"]["content"]
    second = harness.post(sampled, headers)[1]["choices"][0]["message"]["content"]

    assert first == second


def full_headers(artifact: Path | str, base: str = "tiny-chat") -> dict[str, str]:
    return {"x-ft-base-model": base, "x-ft-method": "full", "x-ft-artifact-uri": str(artifact)}


def test_serves_full_weights_only_once_deployed_and_not_after_the_deployment_is_deleted(
    harness: Harness, tiny_model: Path, tmp_path: Path
) -> None:
    full = tmp_path / "model"
    shutil.copytree(tiny_model, full, ignore=shutil.ignore_patterns("ft_model.json"))
    request = chat(model="ft-full", max_tokens=8)

    # Act: a chat before the deployment, the deployment, a chat once ready, the deletion, a chat after.
    before = harness.post(request, full_headers(full))
    deployed = harness.deploy("ft-full", full)
    settled = harness.wait_settled("ft-full")
    status, body = harness.post(request, full_headers(full))
    _, base = harness.post(chat(max_tokens=8))
    weights = weakref.ref(harness.server.registry.deployed("ft-full", None).model)
    deleted = harness.call("DELETE", "/admin/deployments/ft-full")
    after = harness.post(request, full_headers(full))
    gone = harness.get("/admin/deployments/ft-full")

    # Assess
    assert before[0] == 409
    assert before[1]["error"]["code"] == "model_not_deployed"
    assert "POST /v4/models/ft-full/deploy" in before[1]["error"]["message"]
    assert deployed == (202, {"model": "ft-full", "status": "loading", "error": None})
    assert settled == {"model": "ft-full", "status": "ready", "error": None}
    assert status == 200 and body["model"] == "ft-full"
    assert body["choices"][0]["message"] == base["choices"][0]["message"]  # the same weights
    assert deleted == (200, {"model": "ft-full", "deleted": True})
    assert weights() is None  # unloaded: nothing holds the weights any more
    assert after[0] == 409 and after[1]["error"]["code"] == "model_not_deployed"
    assert gone[0] == 404 and gone[1]["error"]["code"] == "model_not_found"
    assert harness.call("DELETE", "/admin/deployments/ft-full") == (
        200,
        {"model": "ft-full", "deleted": True},
    )


# --- deployments of full-parameter models (scripted weights: only the life cycle matters) ---------------


def scripted_artifact(tmp_path: Path, name: str) -> Path:
    """A `model/` directory the scripted loader accepts: only config.json is checked."""
    artifact = tmp_path / name
    artifact.mkdir()
    (artifact / "config.json").write_text("{}")
    return artifact


def test_deploying_the_same_artifact_again_answers_its_state_without_reloading(
    harness: Harness, tmp_path: Path
) -> None:
    artifact = scripted_artifact(tmp_path, "held-model")
    harness.holds[artifact.name] = threading.Event()
    headers = full_headers(artifact, "scripted-stop")

    first = harness.deploy("ft-held", artifact, "scripted-stop")
    again = harness.deploy("ft-held", artifact, "scripted-stop")
    while_loading = harness.post(chat(model="ft-held"), headers)
    harness.holds[artifact.name].set()
    settled = harness.wait_settled("ft-held")
    once_ready = harness.deploy("ft-held", artifact, "scripted-stop")
    status, body = harness.post(chat(model="ft-held"), headers)
    harness.call("DELETE", "/admin/deployments/ft-held")

    assert first == (202, {"model": "ft-held", "status": "loading", "error": None})
    assert again == (200, {"model": "ft-held", "status": "loading", "error": None})
    assert while_loading[0] == 409 and "still loading" in while_loading[1]["error"]["message"]
    assert settled["status"] == "ready"
    assert once_ready == (200, {"model": "ft-held", "status": "ready", "error": None})
    assert status == 200 and body["choices"][0]["message"]["content"] == STOP_SCRIPT
    assert harness.full_loads.count(artifact) == 1


def test_a_deployment_stays_loaded_while_base_and_lora_models_cycle_through_the_lru(
    harness: Harness, adapter: Path, tmp_path: Path
) -> None:
    artifact = scripted_artifact(tmp_path, "pinned-model")
    harness.deploy("ft-pinned", artifact, "scripted-stop")
    assert harness.wait_settled("ft-pinned")["status"] == "ready"
    lora = {"x-ft-base-model": "tiny-chat", "x-ft-method": "lora", "x-ft-artifact-uri": str(adapter)}

    # Act: four base and LoRA models through an LRU of three, then the deployed model.
    for model, headers in [("tiny-chat", {}), ("scripted", {}), ("scripted-stop", {}), ("ft-lora", lora)]:
        assert harness.post(chat(model=model, max_tokens=2), headers)[0] == 200
    status, _ = harness.post(chat(model="ft-pinned", max_tokens=2), full_headers(artifact, "scripted-stop"))
    harness.call("DELETE", "/admin/deployments/ft-pinned")

    # Assess: served without a second load, and never one of the LRU's entries.
    assert status == 200
    assert harness.full_loads.count(artifact) == 1
    assert len(harness.server.registry.loaded_keys()) == 3
    assert not any("|full|" in key for key in harness.server.registry.loaded_keys())


def test_a_failed_deployment_reports_why_and_is_retried_and_another_artifact_replaces_it(
    harness: Harness, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()  # no config.json
    fixed = scripted_artifact(tmp_path, "fixed-model")

    harness.deploy("ft-swap", broken, "scripted-stop")
    failed = harness.wait_settled("ft-swap")
    chat_failed = harness.post(chat(model="ft-swap"), full_headers(broken, "scripted-stop"))
    retried = harness.deploy("ft-swap", broken, "scripted-stop")
    failed_again = harness.wait_settled("ft-swap")
    replaced = harness.deploy("ft-swap", fixed, "scripted-stop")
    ready = harness.wait_settled("ft-swap")
    old_artifact = harness.post(chat(model="ft-swap"), full_headers(broken, "scripted-stop"))
    new_artifact = harness.post(chat(model="ft-swap"), full_headers(fixed, "scripted-stop"))
    harness.call("DELETE", "/admin/deployments/ft-swap")

    assert failed["status"] == "failed" and "config.json" in failed["error"]
    assert chat_failed[0] == 409 and "failed" in chat_failed[1]["error"]["message"]
    assert retried[0] == 202 and failed_again["status"] == "failed"
    assert replaced[0] == 202 and ready == {"model": "ft-swap", "status": "ready", "error": None}
    assert old_artifact[0] == 409 and "another artifact" in old_artifact[1]["error"]["message"]
    assert new_artifact[0] == 200


def test_a_deployment_deleted_while_it_loads_is_dropped_when_the_load_ends(
    harness: Harness, tmp_path: Path
) -> None:
    artifact = scripted_artifact(tmp_path, "dropped-model")
    harness.holds[artifact.name] = threading.Event()

    harness.deploy("ft-dropped", artifact, "scripted-stop")
    deleted = harness.call("DELETE", "/admin/deployments/ft-dropped")
    harness.holds[artifact.name].set()
    for thread in threading.enumerate():
        if thread.name == "ft-deploy-ft-dropped":
            thread.join(10)

    assert deleted == (200, {"model": "ft-dropped", "deleted": True})
    assert harness.full_loads.count(artifact) == 1
    assert harness.get("/admin/deployments/ft-dropped")[0] == 404


def test_a_percent_encoded_model_code_names_the_deployment(harness: Harness, tmp_path: Path) -> None:
    artifact = scripted_artifact(tmp_path, "encoded-model")

    status, body = harness.deploy("ft%3Ascripted%3Aacme", artifact, "scripted-stop")
    harness.wait_settled("ft:scripted:acme")
    served = harness.post(chat(model="ft:scripted:acme"), full_headers(artifact, "scripted-stop"))
    harness.call("DELETE", "/admin/deployments/ft:scripted:acme")

    assert status == 202 and body["model"] == "ft:scripted:acme"
    assert served[0] == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        ({"artifact_uri": "/tmp/x"}, "base_model"),
        ({"base_model": "../etc", "artifact_uri": "/tmp/x"}, "base_model"),
        ({"base_model": "tiny-chat"}, "artifact_uri"),
        ({"base_model": "tiny-chat", "artifact_uri": ""}, "artifact_uri"),
        ({"base_model": "tiny-chat", "artifact_uri": "s3://bucket"}, "artifact_uri"),
        ({"base_model": "tiny-chat", "artifact_uri": "s3://b/tenants/../x/"}, "artifact_uri"),
        ({"base_model": "tiny-chat", "artifact_uri": "/tmp/x", "family": "llama"}, "family"),
        ({"base_model": "tiny-chat", "artifact_uri": "/tmp/x", "method": "full"}, "method"),
    ],
)
def test_a_bad_deployment_body_is_a_400(
    harness: Harness, body: dict[str, Any] | bytes, param: str | None
) -> None:
    status, response = harness.call("PUT", "/admin/deployments/ft-bad", body)

    assert status == 400
    assert response["error"]["type"] == "invalid_request_error"
    assert response["error"]["param"] == param
    assert harness.get("/admin/deployments/ft-bad")[0] == 404


@pytest.mark.parametrize("path", ["/admin/deployments/", "/admin/deployments/a%2Fb", "/admin/deployments/-x"])
def test_a_bad_model_code_in_an_admin_path_is_a_400(harness: Harness, path: str) -> None:
    status, response = harness.get(path)

    assert status == 400 and response["error"]["param"] == "model"


def test_the_admin_paths_take_no_other_routes(harness: Harness) -> None:
    assert harness.call("PUT", "/v1/chat/completions", {})[0] == 404
    assert harness.call("DELETE", "/admin/other/x")[0] == 404


# --- errors, models, health ----------------------------------------------------------------------------


def test_unknown_base_model_is_a_404_in_the_openai_envelope(harness: Harness) -> None:
    status, body = harness.post(chat(model="no-such-model"))

    assert status == 404
    assert body == {
        "error": {
            "message": "The model 'no-such-model' does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_a_missing_artifact_is_a_404_naming_it(harness: Harness, tmp_path: Path) -> None:
    headers = {
        "x-ft-base-model": "tiny-chat",
        "x-ft-method": "lora",
        "x-ft-artifact-uri": str(tmp_path / "gone"),
    }
    empty = tmp_path / "empty"
    empty.mkdir()

    missing = harness.post(chat(model="ft-x"), headers)
    no_config = harness.post(chat(model="ft-y"), {**headers, "x-ft-artifact-uri": str(empty)})

    assert missing[0] == 404 and missing[1]["error"]["code"] == "model_not_found"
    assert str(tmp_path / "gone") in missing[1]["error"]["message"]
    assert no_config[0] == 404 and "adapter_config.json" in no_config[1]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), "model"),
        (json.dumps({"model": "tiny-chat", "messages": []}).encode(), "messages"),
        (json.dumps(chat(temperature=-1)).encode(), "temperature"),
        (json.dumps(chat(max_tokens=0)).encode(), "max_tokens"),
        (json.dumps(chat(stop=["a", "b", "c", "d", "e"])).encode(), "stop"),
        (json.dumps(chat(stream="yes")).encode(), "stream"),
    ],
)
def test_a_bad_body_is_a_400(harness: Harness, body: bytes, param: str | None) -> None:
    status, response = harness.post(body)

    assert status == 400
    assert response["error"]["type"] == "invalid_request_error"
    assert response["error"]["param"] == param


def test_a_method_without_an_artifact_is_a_400(harness: Harness) -> None:
    status, body = harness.post(chat(), {"x-ft-method": "lora"})

    assert status == 400


def test_lists_base_models_and_reports_health(harness: Harness) -> None:
    assert harness.get("/health") == (200, {"status": "ok"})
    status, body = harness.get("/v1/models")
    assert status == 200 and body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["scripted", "scripted-stop", "tiny-chat"]


# --- pure parts ----------------------------------------------------------------------------------------


def test_visible_text_holds_back_a_possible_stop_string_and_partial_characters() -> None:
    assert visible_text("Hello EN", ("END",)) == ("Hello ", False)
    assert visible_text("Hello ENDING", ("END",)) == ("Hello ", True)
    assert visible_text("Hello EN", ("END",), final=True) == ("Hello EN", False)
    assert visible_text("w\ufffd", ()) == ("w", False)
    assert visible_text("b, a", ("a", "b")) == ("", True)


def test_parse_request_accepts_text_parts_developer_role_and_max_completion_tokens() -> None:
    request = parse_request(
        json.dumps(
            {
                "model": "m",
                "messages": [
                    {"role": "developer", "content": "Be brief."},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                    },
                ],
                "max_completion_tokens": 9,
                "stop": "\n",
            }
        ).encode()
    )

    assert [(m.role, m.content) for m in request.messages] == [("system", "Be brief."), ("user", "Hi there")]
    assert request.max_tokens == 9 and request.stop == ("\n",) and request.temperature == 0.0


def test_spec_from_request_reads_the_chat_lambda_headers() -> None:
    spec = spec_from_request(
        "ft-code", {"x-ft-base-model": "tiny-chat", "x-ft-method": "LoRA", "x-ft-artifact-uri": "s3://b/k/"}
    )

    assert (spec.base, spec.method, spec.artifact) == ("tiny-chat", "lora", "s3://b/k/")
    assert spec_from_request("tiny-chat", {}).method == "base"
    with pytest.raises(ApiError) as error:
        spec_from_request("../etc", {})
    assert error.value.status == 404


def test_parse_deployment_reads_the_admin_body_and_the_path_its_model_code() -> None:
    asked = parse_deployment(
        b'{"base_model": "tiny-chat", "artifact_uri": "s3://b/k/model/", "family": "tiny"}'
    )

    assert (asked.base_model, asked.artifact_uri, asked.family) == ("tiny-chat", "s3://b/k/model/", "tiny")
    assert (
        parse_deployment(b'{"base_model": "m", "artifact_uri": "/models/x", "family": null}').family is None
    )
    assert admin_model_code("/admin/deployments/ft%3Am%3Aacme?x=1") == "ft:m:acme"
    with pytest.raises(ApiError) as error:
        admin_model_code("/admin/deployments/code%0A")
    assert error.value.status == 400


def test_sampler_is_greedy_at_temperature_zero_and_repeatable_with_a_seed() -> None:
    logits = torch.tensor([0.1, 3.0, 0.2, 2.9])
    draws = [make_sampler(1.0, 0.95, 3)(logits) for _ in range(3)]

    assert make_sampler(0.0, 1.0, None)(logits) == 1
    assert len(set(draws)) == 1
    assert {make_sampler(1.0, 0.4, None)(logits) for _ in range(20)} == {1}  # top_p keeps one token


# --- S3 (LocalStack) -----------------------------------------------------------------------------------


@pytest.mark.localstack
def test_downloads_an_adapter_from_s3_once_and_serves_it(
    adapter: Path, tiny_model: Path, tmp_path: Path
) -> None:
    import boto3
    from botocore.config import Config

    # Prepare: the adapter where the trainer puts it, and a server with an empty cache.
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or pytest.fail(
        "REQUIRE_LOCALSTACK=1 but AWS_ENDPOINT_URL is unset"
    )
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    bucket = f"serve-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    prefix = "tenants/t1/jobs/ftjob-1/adapter/"
    for file in adapter.iterdir():
        s3.upload_file(str(file), bucket, prefix + file.name)
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-chat").symlink_to(tiny_model, target_is_directory=True)
    cache = tmp_path / "cache"
    server = InferenceServer(ModelRegistry(models, ArtifactCache(cache)), port=0)
    server.start()
    h = Harness(server, models, {})
    headers = {
        "x-ft-base-model": "tiny-chat",
        "x-ft-method": "lora",
        "x-ft-artifact-uri": f"s3://{bucket}/{prefix}",
    }
    try:
        # Act
        status, body = h.post(chat(model="ft-s3", max_tokens=8), headers)
        missing = h.post(
            chat(model="ft-s3-gone"),
            {**headers, "x-ft-artifact-uri": f"s3://{bucket}/tenants/t1/jobs/none/adapter/"},
        )
    finally:
        server.shutdown()

    # Assess: served, cached once under the URI's hash, and a missing prefix is a 404.
    assert status == 200 and body["model"] == "ft-s3"
    cached = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(cached) == 1 and (cached[0] / "adapter_config.json").is_file()
    assert missing[0] == 404 and missing[1]["error"]["code"] == "model_not_found"
