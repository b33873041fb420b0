"""The local inference server: OpenAI-compatible chat completions on CPU with transformers and PEFT.

    python -m ft_trainer.serve --port 8790 --base-models-dir DIR [--cache-dir DIR] [--max-loaded 3]

Endpoints: POST /v1/chat/completions (streaming or not), GET /v1/models, GET /health. The local platform
runs it where the cloud runs vLLM (batch-images/inference); both honour one contract (README.md).
Prompts are formatted by ft_trainer.chat_format, exactly as in training, and decoded token by token
with the KV cache, so every token is flushed to the client as soon as it exists.

Which models a chat reaches: a base model (`model` = its name, no `x-ft-*` headers) and a LoRA adapter
(`x-ft-method: lora`) load on first use into an LRU of `--max-loaded` models. A full-parameter model
(`x-ft-method: full`, `model` = its code) is served only once deployed, as in the cloud, where each has
its own vLLM deployment; until its deployment is ready a chat answers 409 in the error envelope, code
`model_not_deployed`, with a message naming `POST /v4/models/{code}/deploy`. When the chat's
`x-ft-artifact-uri` differs from the deployed artifact, it is a 409 too.

Admin endpoints (deployments of full-parameter models; loopback callers only, others get 403).
`{model_code}` is one path segment, percent-decoded, matching `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`
(else 400). Errors use the OpenAI envelope `{"error": {"message", "type", "param", "code"}}`.

    PUT /admin/deployments/{model_code}
        body {"base_model": str, "artifact_uri": str, "family"?: "chatglm3" | "glm4" | "chatml" | "tiny"}
          base_model: a directory under --base-models-dir; artifact_uri: the job's `model/` prefix,
          s3://bucket/key/ or a local directory; family: the chat format, else told from the base model
        202 {"model": code, "status": "loading", "error": null}: loading started in the background
            (download through the artifact cache, load the weights); the model stays pinned, outside
            the LRU, until deleted. A failed deployment is retried; another artifact replaces it.
        200 {"model": code, "status": "loading" | "ready", "error": null}: that artifact is already
            loading or ready under this code; nothing is reloaded
        400 a malformed body (not JSON, not an object, an unknown field, a bad base_model, artifact_uri
            or family; `param` names the field)
    GET /admin/deployments/{model_code}
        200 {"model": code, "status": "loading" | "ready" | "failed", "error": str | null}
        404 code "model_not_found": not deployed
    DELETE /admin/deployments/{model_code}
        200 {"model": code, "deleted": true}: unloaded and its memory freed (a generation in flight
            finishes first); also when the code was not deployed
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from .chat_format import encode_text, generation_prompt
from .serve_models import ArtifactCache, LoadedModel, ModelRegistry, spec_from_request
from .serve_protocol import (
    DEFAULT_MAX_TOKENS,
    MODEL_CODE,
    ApiError,
    ChatRequest,
    Completion,
    bad_request,
    model_not_found,
    parse_deployment,
    parse_request,
    sse,
    visible_text,
)

MAX_BODY_BYTES = 8 * 1024 * 1024
ADMIN_DEPLOYMENTS = "/admin/deployments/"


class ClientGone(Exception):
    """Writing to the client failed: it disconnected, so generating more is wasted work."""


@dataclass(frozen=True)
class Finished:
    """How a generation ended; `finish_reason` "disconnected" when the client left mid-stream."""

    model: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    text: str


# --- decoding ----------------------------------------------------------------------------------------


def make_sampler(temperature: float, top_p: float, seed: int | None) -> Callable[[torch.Tensor], int]:
    """Greedy at temperature 0 (deterministic); else temperature and nucleus sampling, seeded when asked."""
    if temperature <= 0:
        return lambda logits: int(torch.argmax(logits))
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()

    def sample(logits: torch.Tensor) -> int:
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        if top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            # Keep the smallest set of most likely tokens whose mass reaches top_p (at least one).
            outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs >= top_p
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=generator))

    return sample


@torch.no_grad()
def generate_ids(
    model: Any, prompt: list[int], max_new_tokens: int, stop_ids: frozenset[int], sample: Callable[..., int]
) -> Iterator[int]:
    """Token ids one at a time, with the KV cache; the stop token, if reached, is the last one yielded."""
    device = next(model.parameters()).device
    inputs = torch.tensor([prompt], device=device)
    past: Any = None
    for _ in range(max_new_tokens):
        out = model(input_ids=inputs, past_key_values=past, use_cache=True)
        past = out.past_key_values
        token = sample(out.logits[0, -1])
        yield token
        if token in stop_ids:
            return
        inputs = torch.tensor([[token]], device=device)


def complete(
    loaded: LoadedModel, request: ChatRequest, emit: Callable[[str], None]
) -> tuple[str, str, int, int]:
    """Runs one completion, passing each new piece of visible text to `emit` (which raises ClientGone
    when the client left); `emit("")` first, once the prompt is known to fit (a stream's headers).
    Returns (text, finish_reason, prompt_tokens, completion_tokens)."""
    tokenizer = loaded.tokenizer
    prompt = encode_text(tokenizer, loaded.family, generation_prompt(loaded.family, request.messages))
    room = loaded.context - len(prompt)
    if room < 1:
        raise bad_request(
            f"The prompt is {len(prompt)} tokens; this model's context is {loaded.context} tokens",
            "messages",
            "context_length_exceeded",
        )
    max_new = min(request.max_tokens or DEFAULT_MAX_TOKENS, room)
    sample = make_sampler(request.temperature, request.top_p, request.seed)
    emit("")
    generated: list[int] = []
    sent = ""
    finish = "length"
    stop_token = 0  # the family's stop token counts as generated, as vLLM counts it
    with loaded.lock:
        for token in generate_ids(loaded.model, prompt, max_new, loaded.stop_ids, sample):
            if token in loaded.stop_ids:
                finish, stop_token = "stop", 1
                break
            generated.append(token)
            # Decoding the whole answer each time keeps multi-byte characters and merges right.
            text, stopped = visible_text(tokenizer.decode(generated, skip_special_tokens=True), request.stop)
            if len(text) > len(sent):
                emit(text[len(sent) :])
                sent = text
            if stopped:
                finish = "stop"
                break
    # Flush what was held back (a partial stop string, a trailing U+FFFD) now that nothing follows.
    text = visible_text(tokenizer.decode(generated, skip_special_tokens=True), request.stop, final=True)[0]
    if len(text) > len(sent):
        emit(text[len(sent) :])
        sent = text
    return sent, finish, len(prompt), len(generated) + stop_token


# --- HTTP --------------------------------------------------------------------------------------------


class InferenceServer:
    """The HTTP server around a model registry. `on_finish` observes every generation's end (tests)."""

    def __init__(
        self,
        registry: ModelRegistry,
        host: str = "127.0.0.1",
        port: int = 8790,
        on_finish: Callable[[Finished], None] | None = None,
    ) -> None:
        self.registry = registry
        self.on_finish = on_finish
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True  # a stuck client must not keep the process alive on exit

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="ft-serve", daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive for JSON responses, chunked transfer encoding for the event stream.
    protocol_version = "HTTP/1.1"
    server_version = "ft-serve"
    app: InferenceServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's signature)
        if os.environ.get("FT_SERVE_QUIET") != "1":
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self.path.startswith(ADMIN_DEPLOYMENTS):
            self._admin("GET")
        elif self.path == "/health":
            self._json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            data = [
                {"id": name, "object": "model", "created": 0, "owned_by": "system"}
                for name in self.app.registry.base_names()
            ]
            self._json(200, {"object": "list", "data": data})
        else:
            self._error(ApiError(404, f"No route GET {self.path}", code="not_found"))

    def do_PUT(self) -> None:
        self._admin("PUT")

    def do_DELETE(self) -> None:
        self._admin("DELETE")

    def _admin(self, method: str) -> None:
        """The deployment endpoints (the module's docstring has their contract)."""
        registry = self.app.registry
        try:
            body = self._body()
            if not self.path.startswith(ADMIN_DEPLOYMENTS):
                raise ApiError(404, f"No route {method} {self.path}", code="not_found")
            if not ipaddress.ip_address(self.client_address[0]).is_loopback:
                raise ApiError(403, "The admin endpoints answer loopback callers only", code="forbidden")
            code = admin_model_code(self.path)
            if method == "PUT":
                asked = parse_deployment(body)
                state, started = registry.deploy(code, asked.base_model, asked.artifact_uri, asked.family)
                self._json(202 if started else 200, state)
            elif method == "GET":
                found = registry.deployment(code)
                if found is None:
                    raise model_not_found(f"The model '{code}' is not deployed")
                self._json(200, found)
            else:
                registry.undeploy(code)
                self._json(200, {"model": code, "deleted": True})
        except ApiError as error:
            self._error(error)

    def do_POST(self) -> None:
        try:
            body = self._body()
            if self.path != "/v1/chat/completions":
                raise ApiError(404, f"No route POST {self.path}", code="not_found")
            request = parse_request(body)
            headers = {k.lower(): v for k, v in self.headers.items()}
            loaded = self.app.registry.serving(request.model, spec_from_request(request.model, headers))
        except ApiError as error:
            self._error(error)
            return
        except Exception as error:  # a broken artifact, S3 trouble: the client gets an envelope
            self.log_error("loading failed: %r", error)
            self._error(ApiError(500, f"The model could not be loaded: {error}", "server_error"))
            return
        if request.stream:
            self._stream(loaded, request)
        else:
            self._complete(loaded, request)

    def _complete(self, loaded: LoadedModel, request: ChatRequest) -> None:
        completion = Completion(request.model)
        try:
            text, finish, prompt_tokens, completion_tokens = complete(loaded, request, lambda _: None)
        except ApiError as error:
            self._error(error)
            return
        self._finished(request.model, finish, prompt_tokens, completion_tokens, text)
        self._json(200, completion.response(text, finish, prompt_tokens, completion_tokens))

    def _stream(self, loaded: LoadedModel, request: ChatRequest) -> None:
        completion = Completion(request.model)
        started = False

        def emit(piece: str) -> None:
            nonlocal started
            if not started:
                # Headers only once the prompt fits: a context error can still be a plain 400.
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                started = True
                self._chunk(sse(completion.chunk({"role": "assistant", "content": ""})))
            if piece:
                self._chunk(sse(completion.chunk({"content": piece})))

        try:
            text, finish, prompt_tokens, completion_tokens = complete(loaded, request, emit)
            self._chunk(sse(completion.chunk({}, finish)))
            if request.include_usage:
                self._chunk(sse(completion.usage_chunk(prompt_tokens, completion_tokens)))
            self._chunk(sse("[DONE]"))
            self._chunk(b"")  # the chunked encoding's end
        except ClientGone:
            self.close_connection = True
            self._finished(request.model, "disconnected", 0, 0, "")
            return
        except ApiError as error:
            if not started:
                self._error(error)
                return
            # After the headers went out, the error can only travel as an event, as OpenAI does.
            self._chunk_quietly(sse(error.envelope()))
            self._chunk_quietly(b"")
            self.close_connection = True
            return
        self._finished(request.model, finish, prompt_tokens, completion_tokens, text)

    def _chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError as error:  # BrokenPipeError, ConnectionResetError
            raise ClientGone() from error

    def _chunk_quietly(self, data: bytes) -> None:
        try:
            self._chunk(data)
        except ClientGone:
            pass

    def _finished(self, model: str, finish: str, prompt: int, completion: int, text: str) -> None:
        if self.app.on_finish is not None:
            self.app.on_finish(Finished(model, finish, prompt, completion, text))

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, "The request body is too large", code="request_too_large")
        return self.rfile.read(length)

    def _chunked_body(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "The request body is too large", code="request_too_large")
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _error(self, error: ApiError) -> None:
        self._json(error.status, error.envelope())


def admin_model_code(path: str) -> str:
    """The model code of `/admin/deployments/{model_code}` (percent-decoded), or a 400."""
    raw = path.split("?", 1)[0][len(ADMIN_DEPLOYMENTS) :]
    code = urllib.parse.unquote(raw)
    if "/" in raw or not MODEL_CODE.fullmatch(code):
        raise bad_request(f"'{code}' is not a model code", "model")
    return code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790, help="0 picks a free port (printed)")
    parser.add_argument("--base-models-dir", type=Path, required=True, help="holds {name}/ per base model")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("FT_WORK_DIR") or tempfile.gettempdir()) / "ft-serve-cache",
        help="where artifacts downloaded from S3 are kept, one directory per URI",
    )
    parser.add_argument("--max-loaded", type=int, default=3, help="models kept loaded (LRU)")
    args = parser.parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    registry = ModelRegistry(args.base_models_dir, ArtifactCache(args.cache_dir), args.max_loaded)
    server = InferenceServer(registry, args.host, args.port)
    # The local platform waits for this line (and reads the port from it when started with --port 0).
    print(f"ft-serve listening on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
