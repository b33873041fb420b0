"""The proxy against a fake vLLM (stdlib asyncio): adapters load once on first use, streams are relayed
chunk by chunk, a full model's deployment answers under the model code, and errors use the envelope."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ft_inference.proxy import Proxy, read_body, read_head, serve
from ft_inference.routing import Deployment

ADAPTER = "s3://artifacts/tenants/t1/jobs/ftjob-1/adapter/"
LORA = {"x-ft-base-model": "tiny-chat", "x-ft-method": "lora", "x-ft-artifact-uri": ADAPTER}


class FakeVllm:
    """Answers like vLLM's OpenAI server: a chunked event stream, and the LoRA endpoints."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().split()
        status, headers = 0, {}
        while (header := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = json.loads(await reader.readexactly(int(headers.get("content-length", 0))) or b"{}")
        self.calls.append((line[1], body))
        if line[1] == "/v1/chat/completions" and body.get("stream"):
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            for piece in ("He", "llo"):
                event = {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "model": body["model"],
                    "choices": [{"delta": {"content": piece}}],
                }
                data = f"data: {json.dumps(event)}\n\n".encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        else:
            status = 200
            data = json.dumps({"model": body.get("model"), "ok": True}).encode()
            writer.write(
                f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n".encode()
                + data
            )
        await writer.drain()
        writer.close()


async def call(
    port: int, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode() if body is not None else b""
    method = "POST" if body is not None else "GET"
    head = [f"{method} {path} HTTP/1.1", "Host: x", f"Content-Length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    await writer.drain()
    status, response_headers = await read_head(reader)
    payload = b"".join([piece async for piece in read_body(reader, response_headers)])
    writer.close()
    return status, payload


def run(deployment: Deployment, tmp_path: Path, scenario: Any, files: int = 1) -> tuple[FakeVllm, list[str]]:
    downloads: list[str] = []

    def downloader(uri: str, dest: Path) -> int:
        downloads.append(uri)
        if files:
            dest.mkdir(parents=True)
            (dest / "adapter_config.json").write_text("{}")
        return files

    async def main() -> FakeVllm:
        fake = FakeVllm()
        upstream = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        proxy = Proxy(
            deployment, tmp_path, upstream_port=upstream.sockets[0].getsockname()[1], downloader=downloader
        )
        server = await serve(proxy, "127.0.0.1", 0)
        async with upstream, server:
            await scenario(server.sockets[0].getsockname()[1], proxy)
        return fake

    return asyncio.run(main()), downloads


def test_loads_an_adapter_once_then_relays_its_stream(tmp_path: Path) -> None:
    results: list[tuple[int, bytes]] = []

    async def scenario(port: int, proxy: Proxy) -> None:
        request = {"model": "ft:tiny:acme:a1", "stream": True, "messages": []}
        results.extend(
            await asyncio.gather(
                call(port, "/v1/chat/completions", request, LORA),
                call(port, "/v1/chat/completions", request, LORA),
            )
        )

    fake, downloads = run(Deployment("tiny-chat", "tiny-chat"), tmp_path, scenario)

    assert downloads == [ADAPTER]
    loads = [body for path, body in fake.calls if path == "/v1/load_lora_adapter"]
    assert len(loads) == 1 and loads[0]["lora_name"] == "ft:tiny:acme:a1"
    assert (Path(loads[0]["lora_path"]) / "adapter_config.json").is_file()
    for status, payload in results:
        assert status == 200
        events = payload.decode().split("\n\n")
        assert events[-2] == "data: [DONE]"
        assert [json.loads(e[6:])["model"] for e in events[:-2]] == ["ft:tiny:acme:a1"] * 2


def test_a_full_models_deployment_answers_under_the_model_code(tmp_path: Path) -> None:
    uri = "s3://artifacts/tenants/t1/jobs/ftjob-9/model/"
    out: list[tuple[int, bytes]] = []

    async def scenario(port: int, proxy: Proxy) -> None:
        headers = {"x-ft-base-model": "glm", "x-ft-method": "full", "x-ft-artifact-uri": uri}
        out.append(
            await call(port, "/v1/chat/completions", {"model": "ft:glm:acme:f1", "stream": True}, headers)
        )

    fake, downloads = run(Deployment("glm", "glm", uri), tmp_path, scenario)

    assert downloads == [] and fake.calls[0][1]["model"] == "glm"
    events = out[0][1].decode().split("\n\n")
    assert {json.loads(e[6:])["model"] for e in events[:-2]} == {"ft:glm:acme:f1"}


def test_base_requests_pass_and_the_lora_endpoints_and_missing_adapters_are_refused(tmp_path: Path) -> None:
    out: dict[str, tuple[int, bytes]] = {}

    async def scenario(port: int, proxy: Proxy) -> None:
        out["base"] = await call(port, "/v1/chat/completions", {"model": "tiny-chat"})
        out["health"] = await call(port, "/health", None)
        out["load"] = await call(port, "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": "/etc"})
        out["missing"] = await call(port, "/v1/chat/completions", {"model": "ft:gone"}, LORA)
        out["other"] = await call(port, "/v1/chat/completions", {"model": "llama"})

    fake, _ = run(Deployment("tiny-chat", "tiny-chat"), tmp_path, scenario, files=0)

    assert out["base"][0] == 200 and json.loads(out["base"][1])["model"] == "tiny-chat"
    assert out["health"][0] == 200
    assert out["load"][0] == 404
    assert out["missing"][0] == 404 and json.loads(out["missing"][1])["error"]["code"] == "model_not_found"
    assert out["other"][0] == 404
    assert all(path != "/v1/load_lora_adapter" for path, _ in fake.calls)
