"""Job events in the events table, keyed as `contract/platform.json` says (partition `{tenant}#{job}`,
sort `evt#{millis:013}#{hex}`), like the Lambdas' own events."""

from __future__ import annotations

import secrets
import sys
import time
from decimal import Decimal
from typing import Any, Literal, Protocol

from ft_contract import load_platform

from . import aws

Level = Literal["info", "warn", "error"]


class EventSink(Protocol):
    def message(self, text: str, level: Level = "info", data: dict[str, Any] | None = None) -> None: ...
    def metrics(self, data: dict[str, Any]) -> None: ...


def _decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _decimal(v) for k, v in value.items() if _decimal(v) is not None}
    if isinstance(value, list):
        return [_decimal(v) for v in value]
    return value


class DynamoEventSink:
    """Writes `message` and `metrics` events; also mirrors them to stdout for the Batch job's log."""

    def __init__(self, table_name: str, tenant_id: str, job_id: str, client: Any | None = None) -> None:
        self._table = (client or aws.resource("dynamodb")).Table(table_name)
        self._contract = load_platform()
        self._job_key = self._contract.job_key(tenant_id, job_id)

    def _put(self, kind: str, level: Level, text: str, data: dict[str, Any] | None) -> None:
        now = time.time()
        item: dict[str, Any] = {
            "jobKey": self._job_key,
            "eventKey": self._contract.event_key(
                int(now * 1000), secrets.token_hex(self._contract.random_hex_chars // 2)
            ),
            "id": "ftevent-" + secrets.token_hex(12),
            "createdAt": int(now),
            "level": level,
            "type": kind,
            "message": text,
        }
        if data:
            item["data"] = _decimal(data)
        print(f"[{kind}:{level}] {text}", file=sys.stdout, flush=True)
        try:
            self._table.put_item(Item=item)
        except Exception as error:  # noqa: BLE001 — a lost event must not stop a long training run
            print(f"[events] could not write the event: {error}", file=sys.stderr, flush=True)

    def message(self, text: str, level: Level = "info", data: dict[str, Any] | None = None) -> None:
        self._put("message", level, text, data)

    def metrics(self, data: dict[str, Any]) -> None:
        step, total = data.get("step"), data.get("total_steps")
        loss = data.get("train_loss")
        text = (
            f"Step {step}/{total}: training loss={loss:.4f}"
            if isinstance(loss, float)
            else f"Step {step}/{total}"
        )
        self._put("metrics", "info", text, data)


class PrintSink:
    """For local runs and tests: events on stdout, kept in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any] | None]] = []

    def message(self, text: str, level: Level = "info", data: dict[str, Any] | None = None) -> None:
        self.events.append(("message", text, data))
        print(f"[message:{level}] {text}", flush=True)

    def metrics(self, data: dict[str, Any]) -> None:
        self.events.append(("metrics", "", data))


class JobProgress:
    """Progress on the job item (`trainedTokens`, `estimatedFinish`, `updatedAt`, epoch seconds).

    A conditional update that never writes `status` (the API side owns it) and only touches an existing
    job that has not finished: a late progress write can never resurrect a cancelled or deleted job.
    Failures are reported once and otherwise ignored: progress is a courtesy, training goes on."""

    def __init__(self, table_name: str, tenant_id: str, job_id: str, client: Any | None = None) -> None:
        self._client = client or aws.client("dynamodb")
        self._table = table_name
        self._key = {"tenantId": {"S": tenant_id}, "jobId": {"S": job_id}}
        self._warned = False

    def update(self, trained_tokens: int, eta_seconds: float | None) -> None:
        now = int(time.time())
        names = {"#t": "trainedTokens", "#u": "updatedAt", "#s": "status", "#j": "jobId"}
        values: dict[str, Any] = {
            ":t": {"N": str(int(trained_tokens))},
            ":u": {"N": str(now)},
            ":succeeded": {"S": "succeeded"},
            ":failed": {"S": "failed"},
            ":cancelled": {"S": "cancelled"},
        }
        update = "SET #t = :t, #u = :u"
        if eta_seconds is not None and eta_seconds == eta_seconds:
            names["#e"] = "estimatedFinish"
            values[":e"] = {"N": str(now + int(eta_seconds))}
            update += ", #e = :e"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression=update,
                ConditionExpression="attribute_exists(#j) AND NOT #s IN (:succeeded, :failed, :cancelled)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception as error:  # noqa: BLE001 — a conditional miss or a throttle must not stop training
            if not self._warned:
                self._warned = True
                print(f"[progress] job item not updated: {error}", file=sys.stderr, flush=True)
