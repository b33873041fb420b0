"""The proxy in front of vLLM: loads a fine-tuned model's LoRA adapter on its first request, then
relays the request and vLLM's event stream chunk by chunk.

    python -m ft_inference.proxy      (environment: README.md)

Why a proxy rather than vLLM's LoRA resolver plugins: a resolver gets only the adapter's name, while
the chat Lambda sends the adapter's S3 location in `x-ft-artifact-uri`; the proxy also keeps vLLM's
runtime load/unload endpoints off the network (vLLM listens on 127.0.0.1 only). Standard library
asyncio only: the vLLM image brings no HTTP client we could rely on across versions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .routing import (
    AdapterTable,
    Deployment,
    Route,
    RouteError,
    adapter_dir,
    rewrite_body,
    rewrite_event_line,
)
from .routing import route as route_request

MAX_BODY_BYTES = 8 * 1024 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}
Downloader = Callable[[str, Path], int]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Proxy:
    deployment: Deployment
    adapters_root: Path
    upstream_host: str = "127.0.0.1"
    upstream_port: int = 8000
    max_adapters: int = 64
    downloader: Downloader | None = None
    table: AdapterTable = field(init=False)
    _locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.table = AdapterTable(self.max_adapters)
        if self.downloader is None:
            from .s3sync import default_downloader

            # Tenant-scoped credentials per adapter's tenant when the reader role is configured.
            self.downloader = default_downloader()

    # --- connection handling -----------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if request is None:
                return
            await self.dispatch(request, writer)
        except RouteError as error:
            await send_json(writer, error.status, error.envelope())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left; closing the upstream connection makes vLLM abort the request
        except Exception as error:  # anything else still answers in the envelope
            await send_json(writer, 502, RouteError(502, f"upstream error: {error}").envelope())
        finally:
            writer.close()

    async def dispatch(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.method == "GET" and request.path in ("/health", "/v1/models"):
            await self.relay(Request("GET", request.path, {}, b""), writer, None)
            return
        if request.method != "POST" or request.path != "/v1/chat/completions":
            # Notably /v1/load_lora_adapter: only the proxy itself may change what vLLM serves.
            raise RouteError(404, f"No route {request.method} {request.path}", "not_found")
        try:
            body = json.loads(request.body or b"null")
        except ValueError as error:
            raise RouteError(400, f"the body is not valid JSON: {error}") from error
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise RouteError(400, "'model' must be a non-empty string", param="model")
        target = route_request(body["model"], request.headers, self.deployment)
        upstream = Request("POST", request.path, {"content-type": "application/json"}, b"")
        upstream.body = rewrite_body(body, target.upstream_model)
        if target.kind != "lora":
            await self.relay(upstream, writer, target)
            return
        await self.ensure_adapter(target)
        adapter = self.table.get(target.upstream_model, target.artifact or "")
        if adapter is None:  # evicted between loading and now: extremely unlikely, but say so
            raise RouteError(503, "the adapter was unloaded while loading; retry")
        adapter.in_flight += 1
        try:
            await self.relay(upstream, writer, target)
        finally:
            adapter.in_flight -= 1

    # --- adapters ----------------------------------------------------------------------------------

    async def ensure_adapter(self, target: Route) -> None:
        name, uri = target.upstream_model, target.artifact or ""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # concurrent first requests load the adapter once
            if self.table.get(name, uri) is not None:
                return
            stale = self.table.stale(name, uri)
            if stale is not None:
                await self.unload(stale.name, stale.path)
            path = adapter_dir(self.adapters_root, uri)
            if not (path / "adapter_config.json").is_file():
                await asyncio.to_thread(self._download, uri, path)
            status, text = await self.call(
                "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)}
            )
            if status != 200 and "already" not in text:  # vLLM answers 400 "... has already been loaded"
                raise RouteError(502, f"vLLM could not load the adapter: {text[:500]}", "adapter_load_failed")
            _, evicted = self.table.add(name, uri, path)
            for old in evicted:
                await self.unload(old.name, old.path)

    def _download(self, uri: str, path: Path) -> None:
        scratch = path.with_name(f".partial-{uuid.uuid4().hex}")
        try:
            assert self.downloader is not None
            count = self.downloader(uri, scratch)
            if count == 0 or not (scratch / "adapter_config.json").is_file():
                raise RouteError(
                    404,
                    f"The model's adapter {uri} is missing: no adapter_config.json",
                    "model_not_found",
                    "model",
                )
            shutil.rmtree(path, ignore_errors=True)
            scratch.rename(path)  # whole or not at all
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    async def unload(self, name: str, path: Path) -> None:
        await self.call("/v1/unload_lora_adapter", {"lora_name": name})
        self.table.remove(name)
        shutil.rmtree(path, ignore_errors=True)

    async def call(self, path: str, payload: dict[str, Any]) -> tuple[int, str]:
        """A small JSON POST to vLLM; (status, body text)."""
        request = Request("POST", path, {"content-type": "application/json"}, json.dumps(payload).encode())
        reader, writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        try:
            await write_request(writer, request, self.upstream_host)
            status, headers = await read_head(reader)
            body = b"".join([piece async for piece in read_body(reader, headers)])
            return status, body.decode("utf-8", "replace")
        finally:
            writer.close()

    # --- relaying ----------------------------------------------------------------------------------

    async def relay(self, request: Request, client: asyncio.StreamWriter, target: Route | None) -> None:
        """Forwards the request and streams the response back chunk by chunk, as it arrives."""
        try:
            reader, upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError as error:
            raise RouteError(503, f"the model server is not reachable: {error}", "unavailable") from error
        try:
            await write_request(upstream, request, self.upstream_host)
            status, headers = await read_head(reader)
            # vLLM answers under the name it knows; a full model's client must see its own model code.
            rename = target is not None and target.kind == "full"
            head = [f"HTTP/1.1 {status} {_reason(status)}"]
            head += [f"{k}: {v}" for k, v in headers.items() if k not in HOP_BY_HOP]
            head += ["Transfer-Encoding: chunked", "Connection: close", "", ""]
            client.write("\r\n".join(head).encode())
            pending = b""
            async for piece in read_body(reader, headers):
                if rename and target is not None:
                    pending += piece
                    lines = pending.split(b"\n")
                    pending = lines.pop()
                    piece = b"".join(rewrite_event_line(line + b"\n", target.model) for line in lines)
                if piece:
                    client.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    await client.drain()  # raises once the client is gone: the loop ends here
            if pending:
                piece = rewrite_event_line(pending, target.model) if target is not None else pending
                client.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            client.write(b"0\r\n\r\n")
            await client.drain()
        finally:
            upstream.close()


# --- minimal HTTP/1.1 -------------------------------------------------------------------------------


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = (await reader.readline()).decode("latin-1").split(" ", 2)
    if len(status_line) < 2:
        raise ConnectionError("the upstream closed the connection")
    return int(status_line[1]), await read_headers(reader)


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            return headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    """The body's pieces as they arrive: chunked, Content-Length or until the connection closes."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await read_headers(reader)  # trailers
                return
            yield await reader.readexactly(size)
            await reader.readline()
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining > 0:
            piece = await reader.read(min(remaining, 65536))
            if not piece:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(piece)
            yield piece
    else:
        while piece := await reader.read(65536):
            yield piece


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    line = (await reader.readline()).decode("latin-1").split()
    if len(line) != 3:
        return None
    headers = await read_headers(reader)
    if int(headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise RouteError(413, "The request body is too large", "request_too_large")
    body = b""
    # A request without Content-Length or chunked encoding has no body (it cannot run to the close).
    framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
    async for piece in read_body(reader, headers if framed else {"content-length": "0"}):
        body += piece
        if len(body) > MAX_BODY_BYTES:
            raise RouteError(413, "The request body is too large", "request_too_large")
    return Request(line[0], line[1].split("?")[0], headers, body)


async def write_request(writer: asyncio.StreamWriter, request: Request, host: str) -> None:
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in request.headers.items() if k not in HOP_BY_HOP and k != "host"]
    head += [f"Content-Length: {len(request.body)}", "", ""]
    writer.write("\r\n".join(head).encode() + request.body)
    await writer.drain()


async def send_json(writer: asyncio.StreamWriter, status: int, obj: dict[str, Any]) -> None:
    data = json.dumps(obj).encode()
    head = f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    try:
        writer.write(head.encode() + data)
        await writer.drain()
    except ConnectionError:
        pass


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


async def serve(proxy: Proxy, host: str, port: int) -> asyncio.Server:
    return await asyncio.start_server(proxy.handle, host, port)


def from_environment() -> tuple[Proxy, int]:
    base = os.environ["BASE_MODEL"]
    deployment = Deployment(
        base_model=base,
        served_name=os.environ.get("SERVED_MODEL_NAME") or base,
        full_artifact=os.environ.get("MODEL_ARTIFACT_URI") or None,
    )
    proxy = Proxy(
        deployment,
        Path(os.environ.get("ADAPTER_DIR", "/scratch/adapters")),
        upstream_port=int(os.environ.get("VLLM_PORT", "8000")),
        max_adapters=int(os.environ.get("MAX_DISK_ADAPTERS", "64")),
    )
    return proxy, int(os.environ.get("PORT", "8080"))


def main() -> None:
    proxy, port = from_environment()
    proxy.adapters_root.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        server = await serve(proxy, "0.0.0.0", port)
        print(f"ft-inference proxy on :{port} -> vLLM on 127.0.0.1:{proxy.upstream_port}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
