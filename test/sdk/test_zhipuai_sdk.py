"""The seed's flow through the zhipuai SDK, unchanged but for `base_url`, against a running local platform.

Run by test/e2e/zhipuai-sdk.test.ts, which starts nothing itself: the e2e suite's one platform
(test/e2e/platform-setup.ts) is passed in as FT_BASE_URL, with the API keys of two tenants
(FT_API_KEY, FT_OTHER_API_KEY) and the samples directory (FT_SAMPLES_DIR). The tests run in file order
and share the objects they create, as a tenant app would: upload both data formats, fine-tune with
`hyperparameters` and `request_id`, follow the job, chat with the model code exactly as the seed's
example does, then delete what was made.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from zhipuai import ZhipuAI
from zhipuai.core._errors import APIRequestFailedError, APIStatusError

BASE_URL = os.environ["FT_BASE_URL"]
SAMPLES = Path(os.environ["FT_SAMPLES_DIR"])
MODEL_CODE = "chatglm3-6b-1001"  # the seed's own example code
DISPLAY_NAME = "营销专家 slogan 模型"

# What the tests share, in the order they make it.
made: dict[str, Any] = {}


@pytest.fixture(scope="module")
def client() -> ZhipuAI:
    # As the seed's example builds it, with the platform's base URL and a tenant key.
    return ZhipuAI(api_key=os.environ["FT_API_KEY"], base_url=BASE_URL)


@pytest.fixture(scope="module")
def other() -> ZhipuAI:
    return ZhipuAI(api_key=os.environ["FT_OTHER_API_KEY"], base_url=BASE_URL)


def wait_until(check: Any, what: str, timeout: float = 600.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def listed_file(client: ZhipuAI, file_id: str) -> Any:
    """The SDK has no files.retrieve: a file's status is read from files.list(purpose=…)."""
    return next((f for f in client.files.list(purpose="fine-tune", limit=100).data if f.id == file_id), None)


def test_uploads_both_data_formats_and_they_are_validated(client: ZhipuAI) -> None:
    for name in ("messages.jsonl", "legacy.jsonl"):
        with open(SAMPLES / name, "rb") as data:
            created = client.files.create(file=data, purpose="fine-tune")
        assert created.id and created.id.startswith("file-")
        assert created.purpose == "fine-tune"
        assert created.bytes == (SAMPLES / name).stat().st_size
        made[name] = created.id
    for name in ("messages.jsonl", "legacy.jsonl"):
        done = wait_until(
            lambda: (f := listed_file(client, made[name])) and f.status in ("processed", "error") and f,
            f"{name} to be validated",
            timeout=60,
        )
        assert done.status == "processed", done
    # Another purpose lists none of them: every file here is a fine-tune file.
    assert client.files.list(purpose="batch").data == []


def test_reads_a_file_back(client: ZhipuAI) -> None:
    content = client.files.content(made["messages.jsonl"])
    assert content.content == (SAMPLES / "messages.jsonl").read_bytes()


def test_creates_the_job_with_hyperparameters_request_id_and_a_seed_style_model_code(client: ZhipuAI) -> None:
    job = client.fine_tuning.jobs.create(
        model="tiny-chat",
        training_file=made["messages.jsonl"],
        validation_file=made["legacy.jsonl"],
        hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1.0},
        request_id="seed-flow-create-1",
        # This platform's own fields travel in extra_body: the model code and its display name.
        extra_body={"model_code": MODEL_CODE, "name": DISPLAY_NAME},
    )
    assert job.id and job.id.startswith("ftjob-")
    assert job.status == "queued"
    assert job.model == "tiny-chat"
    assert job.training_file == made["messages.jsonl"]
    assert job.validation_file == made["legacy.jsonl"]
    assert job.request_id == "seed-flow-create-1"
    assert job.hyperparameters is not None and job.hyperparameters.n_epochs == 2
    extra = job.model_dump()
    assert extra.get("model_code") == MODEL_CODE
    assert extra.get("name") == DISPLAY_NAME
    made["job"] = job.id


def test_creates_a_job_with_a_suffix_refuses_to_delete_it_unfinished_then_cancels_and_deletes_it(
    client: ZhipuAI,
) -> None:
    job = client.fine_tuning.jobs.create(
        model="tiny-chat",
        training_file=made["messages.jsonl"],
        hyperparameters={"n_epochs": 50},
        suffix="slogan",
    )
    assert job.model_dump().get("model_code", "").startswith("tiny-slogan-")
    with pytest.raises(APIStatusError) as refused:
        client.fine_tuning.jobs.delete(job.id or "")
    assert refused.value.status_code == 409
    assert "cancel it first" in refused.value.response.json()["error"]["message"]
    cancelled = client.fine_tuning.jobs.cancel(job.id or "")
    assert cancelled.status == "cancelled"
    deleted = client.fine_tuning.jobs.delete(job.id or "")
    assert deleted.id == job.id
    assert deleted.model_dump().get("deleted") is True
    assert job.id not in [j.id for j in client.fine_tuning.jobs.list(limit=100).data]
    with pytest.raises(APIStatusError) as gone:
        client.fine_tuning.jobs.retrieve(job.id or "")
    assert gone.value.status_code == 404


def test_follows_the_job_to_succeeded_with_retrieve_list_and_list_events(client: ZhipuAI) -> None:
    job = wait_until(
        lambda: (j := client.fine_tuning.jobs.retrieve(made["job"])).status in ("succeeded", "failed", "cancelled")
        and j,
        "the job to finish",
        every=1.0,
    )
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == MODEL_CODE
    assert job.trained_tokens and job.trained_tokens > 0
    assert job.request_id == "seed-flow-create-1"
    listed = client.fine_tuning.jobs.list(limit=10)
    assert made["job"] in [j.id for j in listed.data]
    events = client.fine_tuning.jobs.list_events(made["job"], limit=100)
    assert events.data, "no events"
    assert any(e.message == "The job has successfully completed." for e in events.data)
    metrics = [e.data for e in events.data if e.type == "metrics" and e.data is not None]
    assert metrics, "no metrics events"


def test_streams_the_seeds_chat_call_verbatim(client: ZhipuAI) -> None:
    # The seed's own example, unchanged but for base_url (the client fixture).
    response = client.chat.completions.create(
        model=MODEL_CODE,  # 填写需要调用的模型名称
        messages=[
            {"role": "user", "content": "作为一名营销专家，请为我的产品创作一个吸引人的slogan"},
            {"role": "assistant", "content": "当然，为了创作一个吸引人的slogan，请告诉我一些关于您产品的信息"},
            {"role": "user", "content": "智谱AI开放平台"},
            {"role": "assistant", "content": "智启未来，谱绘无限一智谱AI，让创新触手可及!"},
            {"role": "user", "content": "创造一个更精准、吸引人的slogan"},
        ],
        stream=True,
    )
    chunks = 0
    text = ""
    finish = None
    for chunk in response:
        print(chunk.choices[0].delta)
        chunks += 1
        assert chunk.model == MODEL_CODE
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    assert chunks > 1
    assert text
    assert finish in ("stop", "length")


def ask(client: ZhipuAI, **options: Any) -> str:
    completion = client.chat.completions.create(
        model=MODEL_CODE,
        messages=[{"role": "user", "content": "What is the capital of Zorbia?"}],
        max_tokens=24,
        **options,
    )
    assert completion.model == MODEL_CODE
    return completion.choices[0].message.content or ""


def test_answers_greedily_at_temperature_0_echoes_request_id_and_honours_stop_and_seed(client: ZhipuAI) -> None:
    # temperature 0 reaches the platform as do_sample false (and temperature 0.01): greedy, so repeatable.
    completion = client.chat.completions.create(
        model=MODEL_CODE,
        messages=[{"role": "user", "content": "What is the capital of Zorbia?"}],
        temperature=0,
        max_tokens=24,
        request_id="seed-flow-chat-1",
        user_id="end-user-42",
    )
    assert completion.id == "seed-flow-chat-1"
    assert completion.request_id == "seed-flow-chat-1"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    greedy = completion.choices[0].message.content or ""
    assert len(greedy) >= 4, greedy
    assert ask(client, temperature=0) == greedy
    # stop: the greedy answer cut where a piece of its second half first appears.
    stop = greedy[len(greedy) // 2 : len(greedy) // 2 + 2]
    assert ask(client, temperature=0, stop=[stop]) == greedy[: greedy.index(stop)]
    # seed: sampling with the same seed gives the same answer.
    assert ask(client, temperature=0.9, seed=7) == ask(client, temperature=0.9, seed=7)
    # Fields the SDK sends that the platform accepts and ignores.
    assert ask(client, temperature=0, thinking={"type": "disabled"}, response_format={"type": "text"}) == greedy


def test_refuses_a_field_neither_sdk_sends(client: ZhipuAI) -> None:
    with pytest.raises(APIRequestFailedError) as refused:
        ask(client, extra_body={"max_token": 5})
    assert refused.value.status_code == 400
    assert refused.value.response.json()["error"]["code"] == "unknown_parameter"


def test_keeps_the_model_from_another_tenant(other: ZhipuAI) -> None:
    with pytest.raises(APIStatusError) as refused:
        other.chat.completions.create(model=MODEL_CODE, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 404
    with pytest.raises(APIStatusError):
        other.fine_tuning.models.delete(MODEL_CODE)


def test_deleting_the_finished_job_keeps_its_model(client: ZhipuAI) -> None:
    deleted = client.fine_tuning.jobs.delete(made["job"])
    assert deleted.model_dump().get("deleted") is True
    assert made["job"] not in [j.id for j in client.fine_tuning.jobs.list(limit=100).data]
    assert ask(client, temperature=0)


def test_deletes_the_model_and_its_code_is_gone(client: ZhipuAI) -> None:
    status = client.fine_tuning.models.delete(MODEL_CODE)
    assert status.model_name == MODEL_CODE
    assert status.delete_status == "deleted"
    assert status.request_id
    with pytest.raises(APIStatusError) as gone:
        ask(client)
    assert gone.value.status_code == 404


def test_deletes_the_files(client: ZhipuAI) -> None:
    for name in ("messages.jsonl", "legacy.jsonl"):
        deleted = client.files.delete(made[name])
        assert deleted.deleted is True
        assert deleted.id == made[name]
    assert listed_file(client, made["messages.jsonl"]) is None


@pytest.fixture(autouse=True)
def _report_progress(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"[zhipuai] {request.node.name}: {time.monotonic() - started:.1f} s")
