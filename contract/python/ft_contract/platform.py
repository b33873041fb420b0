"""`contract/platform.json`, loaded and validated: the S3 layout, the events table's keys, the checkpoint
manifest, the trainer's exit codes, the terminal statuses and the `x-ft-*` headers, as the Lambdas read
them too (`lambdas/core/contract.ts`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from .files import read_json

_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z]+)\}")
_HEADER = re.compile(r"^x-ft-[a-z-]+$")

# Manifest field types (contract/platform.json) → what a value of that type may be.
_MANIFEST_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "number|null": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
    "record<number|null>": lambda v: isinstance(v, dict)
    and all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v.values()),
    "string": lambda v: isinstance(v, str),
}


def fill(pattern: str, **values: object) -> str:
    """`pattern` with each `{name}` replaced by its value."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"no value for {match.group(0)} in {pattern!r}")
        return str(values[match.group(1)])

    return _TEMPLATE_FIELD.sub(value, pattern)


@dataclass(frozen=True)
class PlatformContract:
    raw: Mapping[str, Any]

    @property
    def s3(self) -> Mapping[str, Any]:
        return self.raw["s3"]

    def tenant_prefix(self, tenant_id: str) -> str:
        return fill(self.s3["tenantPrefix"], tenantId=tenant_id)

    def dataset_object_key(self, tenant_id: str, file_id: str) -> str:
        return fill(self.s3["datasetObject"], tenantId=tenant_id, fileId=file_id)

    def results_file_object_key(self, tenant_id: str, file_id: str) -> str:
        """A job's results CSV as a tenant file (datasets bucket), written by the job-status Lambda."""
        return fill(self.s3["resultsFileObject"], tenantId=tenant_id, fileId=file_id)

    def base_model_prefix(self, name: str) -> str:
        return fill(self.s3["baseModel"], name=name)

    def job_root(self, tenant_id: str, job_id: str) -> str:
        return fill(self.s3["jobRoot"], tenantId=tenant_id, jobId=job_id)

    def result_dir(self, method: str) -> str:
        """`adapter/` (LoRA) or `model/` (full), relative to the job's root."""
        return str(self.s3["result"][method])

    def checkpoint_prefix(self, step: int) -> str:
        """`checkpoints/step-{step}/`, relative to the job's root."""
        return fill(self.s3["checkpoint"], step=step)

    def checkpoint_step(self, key_under_checkpoints: str) -> int | None:
        """The step of a key below a job's `checkpoints/` (`step-12/…` → 12), or None."""
        before, _, after = self.s3["checkpoint"][len(self.s3["checkpoints"]) :].partition("{step}")
        match = re.match(f"^{re.escape(before)}(\\d+){re.escape(after)}", key_under_checkpoints)
        return int(match.group(1)) if match else None

    @property
    def checkpoints_dir(self) -> str:
        return str(self.s3["checkpoints"])

    @property
    def manifest_name(self) -> str:
        return str(self.s3["checkpointManifest"])

    @property
    def metrics_name(self) -> str:
        return str(self.s3["metrics"])

    @property
    def result_summary_name(self) -> str:
        """`result.json`, written last: its presence is what a complete run means."""
        return str(self.s3["resultSummary"])

    @property
    def results_csv_name(self) -> str:
        """`results.csv`: the per-step metrics as the job's result file."""
        return str(self.s3["resultsCsv"])

    def job_key(self, tenant_id: str, job_id: str) -> str:
        return fill(self.raw["events"]["partitionKey"], tenantId=tenant_id, jobId=job_id)

    def event_key(self, epoch_millis: int, random_hex: str) -> str:
        events = self.raw["events"]
        digits, chars = events["millisDigits"], events["randomHexChars"]
        if not 0 <= epoch_millis < 10**digits:
            raise ValueError(f"epoch millis out of range: {epoch_millis}")
        if not re.fullmatch(f"[0-9a-f]{{{chars}}}", random_hex):
            raise ValueError(f"eventKey needs {chars} lowercase hex characters")
        return f"{events['sortKeyPrefix']}{epoch_millis:0{digits}d}#{random_hex}"

    @property
    def random_hex_chars(self) -> int:
        return int(self.raw["events"]["randomHexChars"])

    def manifest_problems(self, manifest: object) -> list[str]:
        """What makes `manifest` not a checkpoint manifest (empty when it is one)."""
        if not isinstance(manifest, dict):
            return ["not an object"]
        spec = self.raw["checkpointManifest"]
        problems = [f"{key} is required" for key in spec["required"] if key not in manifest]
        for key, kind in {**spec["optional"], **spec["required"]}.items():
            if key in manifest and not _MANIFEST_TYPES[kind](manifest[key]):
                problems.append(f"{key} must be {kind}")
        return problems

    def exit_code(self, name: str) -> int:
        return int(self.raw["exitCodes"][name])

    def failure_code(self, exit_code: int | None) -> str:
        codes = self.raw["exitCodes"]
        for name in ("invalidInput", "outOfMemory"):
            if exit_code == codes[name]:
                return str(self.raw["jobErrorCodes"][name])
        return str(self.raw["jobErrorCodes"]["failed"])

    @property
    def job_statuses(self) -> tuple[str, ...]:
        return tuple(self.raw["jobStatuses"])

    @property
    def terminal_statuses(self) -> tuple[str, ...]:
        return tuple(self.raw["terminalStatuses"])

    def header(self, name: str) -> str:
        """`baseModel`, `method` or `artifactUri` → its `x-ft-*` header name."""
        return str(self.raw["headers"][name])


def parse_platform(raw: object) -> PlatformContract:
    """Checks the parts the Python side relies on; raises ValueError naming the bad path."""
    if not isinstance(raw, dict):
        raise ValueError("platform.json: must be an object")
    for section in (
        "s3",
        "events",
        "checkpointManifest",
        "exitCodes",
        "jobErrorCodes",
        "jobStatuses",
        "terminalStatuses",
        "headers",
    ):
        if section not in raw:
            raise ValueError(f"platform.json: {section} is required")
    templates = {
        "tenantPrefix": {"tenantId"},
        "datasetObject": {"tenantId", "fileId"},
        "resultsFileObject": {"tenantId", "fileId"},
        "jobRoot": {"tenantId", "jobId"},
        "checkpoint": {"step"},
        "baseModel": {"name"},
    }
    for key, fields in templates.items():
        found = set(_TEMPLATE_FIELD.findall(str(raw["s3"].get(key, ""))))
        if not fields <= found:
            raise ValueError(
                f"platform.json: s3.{key} must contain {', '.join('{' + f + '}' for f in sorted(fields))}"
            )
    for kind in {**raw["checkpointManifest"]["required"], **raw["checkpointManifest"]["optional"]}.values():
        if kind not in _MANIFEST_TYPES:
            raise ValueError(f"platform.json: unknown manifest field type {kind!r}")
    if raw["exitCodes"].get("succeeded") != 0:
        raise ValueError("platform.json: exitCodes.succeeded must be 0")
    for name, header in raw["headers"].items():
        if not isinstance(header, str) or not _HEADER.match(header):
            raise ValueError(f"platform.json: headers.{name} must be an x-ft-* header name")
    return PlatformContract(raw)


@lru_cache(maxsize=1)
def load_platform() -> PlatformContract:
    """The platform contract, validated once per process."""
    return parse_platform(read_json("platform.json"))


class HeaderError(ValueError):
    """The `x-ft-*` headers contradict each other: a 400 for the caller."""


@dataclass(frozen=True)
class FtHeaders:
    """What the chat relay's `x-ft-*` headers ask the inference server to load."""

    base_model: str | None
    # None (or "base") without an artifact: the base model itself; "lora" or "full" with one.
    method: str | None
    artifact_uri: str | None


def read_ft_headers(headers: Mapping[str, str], contract: PlatformContract | None = None) -> FtHeaders:
    """The `x-ft-*` headers of a request (`headers` must answer lower-case names), checked for the
    combinations the chat relay sends: no artifact (a base model), or an artifact with `lora`/`full`."""
    contract = contract or load_platform()
    artifact_name, method_name = contract.header("artifactUri"), contract.header("method")
    artifact = headers.get(artifact_name) or None
    method = (headers.get(method_name) or "").lower() or None
    if artifact is None and method not in (None, "base"):
        raise HeaderError(f"{method_name} {method!r} needs an {artifact_name} header")
    if artifact is not None and method not in ("lora", "full"):
        raise HeaderError(f"{method_name} must be 'lora' or 'full' with an {artifact_name} header")
    return FtHeaders(
        headers.get(contract.header("baseModel")) or None, method if artifact else None, artifact
    )
