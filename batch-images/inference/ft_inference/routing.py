"""Pure request routing for the proxy: which model vLLM must serve a request with, where an adapter
lives on local disk, the adapter table (in-flight counts, LRU eviction), and body/stream rewrites.

No I/O and no third-party imports (ft_contract is the platform's own): unit-tested without vLLM, S3 or a network.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ft_contract import HeaderError, read_ft_headers

Kind = Literal["base", "lora", "full"]


class RouteError(Exception):
    """An error for the client in OpenAI's envelope (the chat Lambda relays it as is)."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def envelope(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def not_found(message: str) -> RouteError:
    return RouteError(404, message, "model_not_found", "model")


@dataclass(frozen=True)
class Deployment:
    """What this container serves: one base model (adapters on top), or one full model's own weights."""

    base_model: str
    served_name: str  # vLLM's --served-model-name
    full_artifact: str | None = None  # MODEL_ARTIFACT_URI of a full-parameter model's deployment


@dataclass(frozen=True)
class Route:
    kind: Kind
    model: str  # the request's model: what the client must see in every response chunk
    upstream_model: str  # the name vLLM knows: base name, LoRA name (= model code) or served name
    artifact: str | None = None


def _prefix(uri: str) -> str:
    return uri.rstrip("/") + "/"


def route(model: str, headers: Mapping[str, str], deployment: Deployment) -> Route:
    """`headers` with lower-case names, as the chat Lambda sets them (x-ft-base-model, x-ft-method,
    x-ft-artifact-uri)."""
    if not model:
        raise RouteError(400, "'model' must be a non-empty string", param="model")
    try:
        asked = read_ft_headers(headers)
    except HeaderError as error:
        raise RouteError(400, str(error)) from error
    artifact, method = asked.artifact_uri, asked.method
    base = asked.base_model or (model if artifact is None else deployment.base_model)
    if artifact is None:
        if deployment.full_artifact is not None or model != deployment.base_model:
            raise not_found(f"The model '{model}' does not exist on this deployment")
        return Route("base", model, deployment.served_name)
    if not artifact.startswith("s3://") or ".." in artifact.split("/") or len(artifact.split("/")) < 5:
        raise RouteError(400, f"x-ft-artifact-uri {artifact!r} is not an s3://bucket/prefix/ URI")
    if base != deployment.base_model:
        raise not_found(f"The model '{model}' is based on '{base}', not served by this deployment")
    if method == "full":
        if deployment.full_artifact is None or _prefix(artifact) != _prefix(deployment.full_artifact):
            raise not_found(f"The model '{model}' has no deployment of its own here")
        return Route("full", model, deployment.served_name, _prefix(artifact))
    if deployment.full_artifact is not None:
        raise not_found(f"The model '{model}' is an adapter; this deployment serves one full model")
    return Route("lora", model, model, _prefix(artifact))


def adapter_dir(root: Path, uri: str) -> Path:
    """One directory per artifact URI (model codes hold ':' and are the tenant's to choose)."""
    return root / hashlib.sha256(_prefix(uri).encode()).hexdigest()[:32]


@dataclass
class Adapter:
    name: str
    uri: str
    path: Path
    in_flight: int = 0


class AdapterTable:
    """The adapters registered with vLLM, least recently used first.

    vLLM keeps a runtime-loaded adapter registered (and re-reads its files when its own GPU/CPU LoRA
    caches evicted it), so its files must stay on disk while it is registered. Past `max_adapters`,
    the least recently used idle adapters are unloaded and deleted; one serving a request never is."""

    def __init__(self, max_adapters: int) -> None:
        self.max_adapters = max(1, max_adapters)
        self._entries: OrderedDict[str, Adapter] = OrderedDict()

    def get(self, name: str, uri: str) -> Adapter | None:
        """The registered adapter for this name and URI; None when it must be (re)loaded."""
        entry = self._entries.get(name)
        if entry is None or entry.uri != uri:
            return None
        self._entries.move_to_end(name)
        return entry

    def stale(self, name: str, uri: str) -> Adapter | None:
        """An adapter registered under this name for another URI (it must be unloaded first)."""
        entry = self._entries.get(name)
        return entry if entry is not None and entry.uri != uri else None

    def add(self, name: str, uri: str, path: Path) -> tuple[Adapter, list[Adapter]]:
        """Registers an adapter; returns it and the idle adapters to unload and delete now."""
        entry = Adapter(name, uri, path)
        self._entries[name] = entry
        self._entries.move_to_end(name)
        evicted: list[Adapter] = []
        for other in list(self._entries.values()):
            if len(self._entries) <= self.max_adapters:
                break
            if other.in_flight == 0 and other is not entry:
                evicted.append(self._entries.pop(other.name))
        return entry, evicted

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)


def rewrite_body(body: dict[str, Any], upstream_model: str) -> bytes:
    return json.dumps({**body, "model": upstream_model}).encode()


def rewrite_event_line(line: bytes, model: str) -> bytes:
    """A `data: {...}` line with `model` set to the client's name (a full model's deployment serves
    it under BASE_MODEL's served name); other lines unchanged."""
    if not line.startswith(b"data: {"):
        return line
    end = len(line.rstrip(b"\r\n"))
    try:
        obj = json.loads(line[6:end])
    except ValueError:
        return line
    if isinstance(obj, dict) and "model" in obj:
        obj["model"] = model
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + line[end:]
