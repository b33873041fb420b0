"""The OpenAI chat-completions wire format of the local inference server: request parsing, response
objects, the error envelope and stop-string handling.

Pure Python (no torch, no HTTP): the server module drives it, the tests check it directly. The vLLM
image (batch-images/inference) honours the same contract, so the chat Lambda cannot tell them apart.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .chat_format import FAMILIES, Family, Message

DEFAULT_MAX_TOKENS = 256
MAX_STOP_STRINGS = 4  # OpenAI's limit
# A base model's directory name under --base-models-dir.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A model code in an admin path: the platform's codes (lambdas/core/jobs/model-code.ts) and, leniently,
# OpenAI-style `ft:base:org:suffix` names.
MODEL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_URI_LENGTH = 2048


class ApiError(Exception):
    """An error the client sees in OpenAI's envelope `{"error": {message, type, param, code}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def model_not_found(message: str) -> ApiError:
    return ApiError(404, message, code="model_not_found", param="model")


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, code=code, param=param)


def model_not_deployed(code: str, detail: str = "") -> ApiError:
    """A chat for a full-parameter model that is not deployed and ready (`detail`: why, in brackets)."""
    return ApiError(
        409,
        f"The model '{code}' is not deployed{detail}: deploy it with POST /v4/models/{code}/deploy, "
        "then retry once its deployment is ready",
        code="model_not_deployed",
        param="model",
    )


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    # 0 means greedy decoding: deterministic, which the end-to-end test relies on.
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def parse_request(body: bytes) -> ChatRequest:
    """A chat-completions body; anything malformed is a 400 naming the offending parameter."""
    try:
        obj = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"the body is not valid JSON: {error}") from error
    if not isinstance(obj, dict):
        raise bad_request("the body must be a JSON object")
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string", "model")
    return ChatRequest(
        model=model,
        messages=_messages(obj.get("messages")),
        stream=_bool(obj, "stream"),
        include_usage=_include_usage(obj),
        temperature=_number(obj, "temperature", 0.0, 0.0, 2.0),
        top_p=_number(obj, "top_p", 1.0, 0.0, 1.0, open_low=True),
        max_tokens=_max_tokens(obj),
        stop=_stop(obj.get("stop")),
        seed=_seed(obj.get("seed")),
    )


def _messages(raw: object) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty array", "messages")
    out: list[Message] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise bad_request(
                f"messages[{i}] needs a role of system, developer, user or assistant", f"messages[{i}].role"
            )
        out.append(Message(_ROLES[m["role"]], _content(m.get("content"), i)))  # type: ignore[arg-type]
    return out


def _content(content: object, i: int) -> str:
    # A string, an array of text parts (what newer clients send), or null on an assistant turn.
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "".join(p["text"] for p in content)
    raise bad_request(f"messages[{i}].content must be a string or text parts", f"messages[{i}].content")


def _bool(obj: dict[str, Any], name: str) -> bool:
    value = obj.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be a boolean", name)
    return value


def _include_usage(obj: dict[str, Any]) -> bool:
    options = obj.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object", "stream_options")
    return _bool(options, "include_usage")


def _number(
    obj: dict[str, Any], name: str, default: float, low: float, high: float, open_low: bool = False
) -> float:
    value = obj.get(name)
    if value is None:
        return default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (low < value <= high if open_low else low <= value <= high):
        bound = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise bad_request(f"'{name}' must be a number in {bound}", name)
    return float(value)


def _max_tokens(obj: dict[str, Any]) -> int | None:
    # Newer OpenAI clients send max_completion_tokens; older ones max_tokens.
    name = "max_completion_tokens" if obj.get("max_completion_tokens") is not None else "max_tokens"
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"'{name}' must be a positive integer", name)
    return value


def _stop(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_STRINGS
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise bad_request(f"'stop' must be a non-empty string or up to {MAX_STOP_STRINGS} of them", "stop")
    return tuple(stops)


def _seed(raw: object) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise bad_request("'seed' must be an integer", "seed")
    return raw


# --- deployments (the loopback admin endpoints) ---------------------------------------------------


@dataclass(frozen=True)
class DeploymentRequest:
    """The body of `PUT /admin/deployments/{model_code}`."""

    base_model: str
    artifact_uri: str
    family: Family | None = None


_DEPLOYMENT_FIELDS = ("base_model", "artifact_uri", "family")


def parse_deployment(body: bytes) -> DeploymentRequest:
    """A deployment body; anything malformed is a 400 naming the offending field."""
    try:
        obj = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"the body is not valid JSON: {error}") from error
    if not isinstance(obj, dict):
        raise bad_request("the body must be a JSON object")
    unknown = sorted(set(obj) - set(_DEPLOYMENT_FIELDS))
    if unknown:
        raise bad_request(
            f"unknown field '{unknown[0]}': the body takes {', '.join(_DEPLOYMENT_FIELDS)}",
            unknown[0],
            "unknown_parameter",
        )
    base = obj.get("base_model")
    if not isinstance(base, str) or not MODEL_NAME.fullmatch(base):
        raise bad_request("'base_model' must be a base model's name", "base_model")
    return DeploymentRequest(base, _artifact_uri(obj.get("artifact_uri")), _family(obj.get("family")))


def _artifact_uri(uri: object) -> str:
    if (
        not isinstance(uri, str)
        or not uri
        or len(uri) > MAX_URI_LENGTH
        or any(ord(c) < 32 or ord(c) == 127 for c in uri)
    ):
        raise bad_request(
            f"'artifact_uri' must be an s3:// prefix or a local directory of at most {MAX_URI_LENGTH} "
            "characters",
            "artifact_uri",
        )
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        if not bucket or not key or ".." in key.split("/"):
            raise bad_request(f"'artifact_uri' {uri!r} is not a valid artifact prefix", "artifact_uri")
    return uri


def _family(family: object) -> Family | None:
    if family is None:
        return None
    if family not in FAMILIES:
        raise bad_request(f"'family' must be one of {', '.join(FAMILIES)}", "family")
    return family  # type: ignore[return-value]


# --- stop strings ------------------------------------------------------------------------------------


def visible_text(text: str, stops: tuple[str, ...], final: bool = False) -> tuple[str, bool]:
    """What of the decoded text so far may be sent, and whether a stop string was reached.

    Text is cut before the earliest stop string. Until the generation ends, a tail that could still
    become a stop string is held back (the client must never see part of one), and so is a trailing
    U+FFFD: a multi-byte character whose remaining bytes are still to come."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut], True
    if final:
        return text, False
    hold = max((n for s in stops for n in range(len(s) - 1, 0, -1) if text.endswith(s[:n])), default=0)
    end = len(text) - hold
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    return text[:end], False


# --- responses ---------------------------------------------------------------------------------------


@dataclass
class Completion:
    """One response's identity, shared by its chunks."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
        }

    def response(
        self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage(prompt_tokens, completion_tokens),
        }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(obj: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: <json>` and a blank line."""
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return f"data: {data}\n\n".encode()
