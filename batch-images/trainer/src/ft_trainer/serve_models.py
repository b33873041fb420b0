"""Which weights a request needs, getting them onto local disk, a small LRU of loaded models, and the
deployed full-parameter models.

A request names a base model (`{base-models-dir}/{name}/`) or, through the chat Lambda's headers, a
fine-tuned result: `x-ft-artifact-uri` (an `adapter/` or `model/` prefix in S3, or a local directory
in tests and the local platform), `x-ft-method` (`lora` or `full`) and `x-ft-base-model`.

Base models and LoRA adapters load on first use and share the LRU. A full-parameter model is served
only once deployed (`deploy`, behind `PUT /admin/deployments/{code}`), as in the cloud, where each one
gets its own vLLM deployment: it loads in the background and stays pinned, outside the LRU, until
`undeploy`.
"""

from __future__ import annotations

import gc
import hashlib
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ft_contract import HeaderError, read_ft_headers
from typing import Any, Literal

from .chat_format import Family, check_tokenizer, stop_tokens
from .config import ConfigError
from .entrypoint import detect_family
from .storage import ObjectStore, parse_s3
from .serve_protocol import MODEL_NAME as _NAME
from .serve_protocol import ApiError, bad_request, model_not_deployed, model_not_found

Method = Literal["base", "lora", "full"]
DeploymentStatus = Literal["loading", "ready", "failed"]
# A file whose presence in a cached artifact directory means its download finished.
_COMPLETE = ".ft-complete"


@dataclass(frozen=True)
class ModelSpec:
    base: str
    method: Method
    artifact: str | None = None

    @property
    def key(self) -> str:
        return f"{self.base}|{self.method}|{self.artifact or ''}"


def spec_from_request(model: str, headers: Mapping[str, str]) -> ModelSpec:
    """The weights a request needs. `headers` must answer lower-case names."""
    try:
        asked = read_ft_headers(headers)
    except HeaderError as error:
        raise bad_request(str(error)) from error
    base = asked.base_model or model
    if not _NAME.match(base):
        raise model_not_found(f"The model '{base}' does not exist")
    if asked.artifact_uri is None:
        return ModelSpec(base, "base")
    return ModelSpec(base, asked.method, asked.artifact_uri)  # type: ignore[arg-type]


class ArtifactCache:
    """Artifact prefixes on local disk, downloaded once per URI (the URI is the key: a job's result
    never changes once written). Local directories are used in place."""

    def __init__(self, cache_dir: Path, store: ObjectStore | None = None) -> None:
        self.cache_dir = cache_dir
        self.store = store or ObjectStore()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def local_dir(self, uri: str) -> Path:
        parsed = parse_s3(uri)
        if parsed is None:
            path = Path(uri.removeprefix("file://"))
            if not path.is_dir():
                raise model_not_found(f"The model's artifact {uri} does not exist")
            return path
        if not parsed.key or ".." in parsed.key.split("/"):
            raise bad_request(f"x-ft-artifact-uri {uri!r} is not a valid artifact prefix")
        dest = self.cache_dir / hashlib.sha256(uri.encode()).hexdigest()[:32]
        with self._lock_for(uri):  # two first requests for the same model download it once
            if (dest / _COMPLETE).is_file():
                return dest
            # Into a scratch directory first: a crash mid-download must not leave a "complete" copy.
            scratch = self.cache_dir / f".partial-{uuid.uuid4().hex}"
            try:
                count = self.store.download_prefix(parsed, scratch)
                if count == 0:
                    raise model_not_found(
                        f"The model's artifact {uri} has no files: its training result is missing"
                    )
                (scratch / _COMPLETE).write_text(uri + "\n")
                if dest.exists():
                    shutil.rmtree(dest)
                scratch.rename(dest)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return dest

    def _lock_for(self, uri: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uri, threading.Lock())


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any
    tokenizer: Any
    family: Family
    stop_ids: frozenset[int]
    context: int
    # torch on CPU gains nothing from two generations interleaving on one model; one at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Deployment:
    """A full-parameter model deployed under its code. Its fields change only under the registry's lock."""

    code: str
    base: str
    artifact: str
    family: Family | None
    status: DeploymentStatus = "loading"
    error: str | None = None
    loaded: LoadedModel | None = None

    def state(self) -> dict[str, Any]:
        """The admin endpoints' answer: `{"model", "status", "error"}`."""
        return {"model": self.code, "status": self.status, "error": self.error}


Loader = Callable[[Path, Path | None, Path | None], tuple[Any, Any]]


def _default_loader(base: Path, adapter: Path | None, full: Path | None) -> tuple[Any, Any]:
    from .generate import load_for_inference

    return load_for_inference(base, adapter=adapter, full_model=full)


class ModelRegistry:
    """Base model directories, the artifact cache and an LRU of at most `max_loaded` loaded models.

    Each entry holds its own copy of the base weights: PEFT injects an adapter's layers into the model
    it wraps, so two adapters cannot share one base without PEFT's multi-adapter switching, which would
    serialise every model of a base behind one lock. The LRU bound keeps memory in check instead."""

    def __init__(
        self,
        base_models_dir: Path,
        artifacts: ArtifactCache,
        max_loaded: int = 3,
        loader: Loader = _default_loader,
    ) -> None:
        self.base_models_dir = base_models_dir
        self.artifacts = artifacts
        self.max_loaded = max(1, max_loaded)
        self._loader = loader
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._deployments: dict[str, Deployment] = {}

    def base_names(self) -> list[str]:
        if not self.base_models_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.base_models_dir.iterdir() if p.is_dir() and (p / "config.json").is_file()
        )

    def base_dir(self, name: str) -> Path:
        path = self.base_models_dir / name
        if not _NAME.match(name) or not (path / "config.json").is_file():
            raise model_not_found(f"The model '{name}' does not exist")
        return path

    def serving(self, model: str, spec: ModelSpec) -> LoadedModel:
        """The loaded model a chat for `model` (the request's `model`: a model code when fine-tuned)
        needs. A full-parameter model only when deployed and ready (else a 409 naming the deploy call);
        a base model or LoRA adapter is loaded on first use."""
        if spec.method == "full":
            return self.deployed(model, spec.artifact)
        return self.get(spec)

    def get(self, spec: ModelSpec) -> LoadedModel:
        """A base model or LoRA adapter from the LRU, loaded on a miss (evicting the least recent)."""
        with self._guard:
            hit = self._loaded.get(spec.key)
            if hit is not None:
                self._loaded.move_to_end(spec.key)
                return hit
            loading = self._loading.setdefault(spec.key, threading.Lock())
        with loading:  # one load per model; other models load (or serve) meanwhile
            with self._guard:
                hit = self._loaded.get(spec.key)
            if hit is not None:
                return hit
            loaded = self._load(spec)
            with self._guard:
                self._loaded[spec.key] = loaded
                while len(self._loaded) > self.max_loaded:
                    # A generation still using an evicted model keeps its reference until it ends.
                    self._loaded.popitem(last=False)
                self._loading.pop(spec.key, None)
            return loaded

    def loaded_keys(self) -> list[str]:
        with self._guard:
            return list(self._loaded)

    # --- deployments of full-parameter models ------------------------------------------------------

    def deploy(
        self, code: str, base: str, artifact: str, family: Family | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Starts loading `artifact` as `code` in a background thread; returns (its state, started).

        Idempotent: while the same artifact is loading or ready under `code`, nothing restarts and its
        state is returned with started False. A failed one is retried; another artifact replaces the
        deployment (what the old one had loaded is dropped)."""
        with self._guard:
            current = self._deployments.get(code)
            if current is not None and current.artifact == artifact and current.status != "failed":
                return current.state(), False
            if current is not None:
                current.loaded = None  # replaced: its weights go, unless a generation still holds them
            deployment = Deployment(code, base, artifact, family)
            self._deployments[code] = deployment
            state = deployment.state()
        if current is not None:
            gc.collect()
        threading.Thread(
            target=self._load_deployment, args=(deployment,), name=f"ft-deploy-{code}", daemon=True
        ).start()
        return state, True

    def deployment(self, code: str) -> dict[str, Any] | None:
        """The deployment's state, or None when `code` is not deployed."""
        with self._guard:
            found = self._deployments.get(code)
            return None if found is None else found.state()

    def undeploy(self, code: str) -> bool:
        """Forgets the deployment and frees its weights (a generation in flight keeps them until it
        ends; a load in flight is dropped when it finishes). False when `code` was not deployed."""
        with self._guard:
            removed = self._deployments.pop(code, None)
            if removed is not None:
                removed.loaded = None
        if removed is None:
            return False
        gc.collect()
        return True

    def deployed(self, code: str, artifact: str | None) -> LoadedModel:
        """The ready deployment of `code` (of `artifact`, when the chat names one), else a 409."""
        with self._guard:
            found = self._deployments.get(code)
            if found is None:
                detail = ""
            elif found.status == "loading":
                detail = " (its deployment is still loading)"
            elif found.status == "failed":
                detail = f" (its deployment failed: {found.error})"
            elif artifact is not None and artifact != found.artifact:
                detail = " (the deployment serves another artifact)"
            else:
                assert found.loaded is not None
                return found.loaded
        raise model_not_deployed(code, detail)

    def _load_deployment(self, deployment: Deployment) -> None:
        loaded: LoadedModel | None = None
        error: str | None = None
        try:
            loaded = self._load(ModelSpec(deployment.base, "full", deployment.artifact), deployment.family)
        except ApiError as failure:
            error = failure.message
        except Exception as failure:  # a broken artifact, S3 trouble: the deployment reports it
            error = f"the model could not be loaded: {failure}"
        with self._guard:
            if self._deployments.get(deployment.code) is not deployment:
                return  # deleted or replaced meanwhile: what was loaded is dropped here
            if loaded is None:
                deployment.status, deployment.error = "failed", error
            else:
                deployment.status, deployment.loaded = "ready", loaded

    def _load(self, spec: ModelSpec, family: Family | None = None) -> LoadedModel:
        base = self.base_dir(spec.base)
        if family is None:
            try:
                family = detect_family(base)
            except ConfigError as error:
                raise ApiError(500, str(error), "server_error") from error
        adapter = full = None
        if spec.artifact is not None:
            local = self.artifacts.local_dir(spec.artifact)
            needed = "adapter_config.json" if spec.method == "lora" else "config.json"
            if not (local / needed).is_file():
                raise model_not_found(f"The model's artifact {spec.artifact} has no {needed}")
            adapter, full = (local, None) if spec.method == "lora" else (None, local)
        model, tokenizer = self._loader(base, adapter, full)
        check_tokenizer(tokenizer, family)
        stops = frozenset(int(tokenizer.convert_tokens_to_ids(t)) for t in stop_tokens(family))
        return LoadedModel(spec, model, tokenizer, family, stops, context_length(model, tokenizer))


def context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model takes: its position limit, or the tokenizer's when smaller."""
    config = getattr(model, "config", None)
    limits = [
        int(v)
        for v in (
            getattr(config, "max_position_embeddings", None),
            getattr(config, "seq_length", None),  # ChatGLM3
            getattr(tokenizer, "model_max_length", None),
        )
        if isinstance(v, int) and 0 < v < 10_000_000  # tokenizers say 1e30 for "no limit"
    ]
    return min(limits) if limits else 2048
