"""A fake OpenAI-compatible chat server on loopback, for fault tests.

`FakeLLMServer` runs a threaded `http.server` on 127.0.0.1 (a free port) and answers
`POST /v1/chat/completions` (streaming or not), `POST /v1/completions` (streamed: text
completion chunks) and `GET /v1/models` according to its `mode`, which a test may change
at any time:

- `ok`: the configured `answer`, streamed word by word, then `finish_reason: "stop"` and
  `data: [DONE]`;
- `slow`: waits `delay` seconds before sending anything, then answers like `ok` (past
  the client's timeout this is a timeout; within it, a slow but good model);
- `stall`: sends the headers and the first token, waits `delay` seconds, then the rest
  (a model that stops talking mid-answer);
- `trickle`: one token every `interval` seconds, `trickle_tokens` of them (a model that
  keeps talking past any deadline);
- `garbage`: 200 with an HTML page instead of JSON or an event stream;
- `malformed`: 200 `text/event-stream` whose `data:` is not JSON;
- `cut`: two tokens, then the connection is dropped mid-body (chunked encoding never
  finished);
- `cut_clean`: two tokens, then the body ends without a `finish_reason` or `[DONE]`;
- `error500`: 500 with an OpenAI-shaped error body that echoes the `Authorization`
  header (as a careless proxy might; it lets a test check that no secret is logged);
- `down`: use `closed_port_url()` instead: nothing listens there.

Every request is recorded (`requests`), and `max_in_flight` says how many chat requests
were ever being answered at once. Sleeps are cut short by `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "slow", "stall", "trickle", "garbage", "malformed", "cut", "cut_clean", "error500")
DEFAULT_ANSWER = "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return f"http://127.0.0.1:{port}/v1"


def _chunk(content: str | None, finish: str | None = None, role: bool = False, *, text: bool = False) -> dict[str, Any]:
    if text:  # a text completion's chunk (`/v1/completions`)
        return {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": 1735689600,
            "model": "fake-model",
            "choices": [{"index": 0, "text": content or "", "finish_reason": finish, "logprobs": None}],
        }
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1735689600,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class FakeLLMServer:
    def __init__(self, mode: str = "ok", *, answer: str = DEFAULT_ANSWER, delay: float = 3.0) -> None:
        self.mode = mode
        self.answer = answer
        self.delay = delay
        self.interval = 0.3
        self.trickle_tokens = 60
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def do_GET(self) -> None:
                body = json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                self._send(200, "application/json", body.encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    payload = json.loads(raw or b"{}")
                except ValueError:
                    payload = {}
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "json": payload, "at": time.monotonic()}
                    )
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._answer(self, payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: that is the point of several modes
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._handler = Handler
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-llm", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # ------------------------------------------------------------------ answers

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _tokens(self) -> list[str]:
        words = self.answer.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def _answer(self, h: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
        mode = self.mode
        stream = bool(payload.get("stream"))
        text = not h.path.endswith("/chat/completions")
        if mode == "slow":
            self._sleep(self.delay)
        if mode == "garbage":
            body = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            h.send_response(200)
            h.send_header("content-type", "text/html")
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if mode == "error500":
            body = json.dumps(
                {
                    "error": {
                        "message": f"upstream exploded (auth was {h.headers.get('authorization')})",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            ).encode()
            h.send_response(500)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if not stream and mode in ("ok", "slow"):
            body = json.dumps(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 1735689600,
                    "model": "fake-model",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": self.answer},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            ).encode()
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        # ---- an event stream
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        if mode == "cut_clean":
            h.send_header("connection", "close")  # body delimited by the connection's end
        else:
            h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        chunked = mode != "cut_clean"

        def write(data: bytes) -> None:
            if chunked:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                h.wfile.write(data)
            h.wfile.flush()

        def event(obj: Any) -> None:
            write(b"data: " + json.dumps(obj).encode() + b"\n\n")

        if mode == "malformed":
            write(b"data: {this is not json\n\n")
            write(b"data: [DONE]\n\n")
            write(b"")  # the terminating zero-length chunk
            return
        tokens = self._tokens()
        if mode == "trickle":
            tokens = (tokens * (self.trickle_tokens // max(1, len(tokens)) + 1))[: self.trickle_tokens]
        for i, token in enumerate(tokens):
            if mode in ("cut", "cut_clean") and i == 2:
                h.close_connection = True
                with contextlib.suppress(OSError):
                    if mode == "cut":
                        # Drop the connection without the terminating chunk.
                        h.connection.shutdown(socket.SHUT_RDWR)
                    else:
                        h.wfile.flush()
                        h.connection.shutdown(socket.SHUT_WR)
                return
            event(_chunk(token, role=i == 0, text=text))
            if mode == "stall" and i == 0:
                self._sleep(self.delay)
            if mode == "trickle":
                self._sleep(self.interval)
                if self._stopping.is_set():
                    return
        event(_chunk(None, finish="stop", text=text))
        write(b"data: [DONE]\n\n")
        write(b"")


@contextlib.contextmanager
def fake_llm(mode: str = "ok", **kwargs: Any) -> Iterator[FakeLLMServer]:
    server = FakeLLMServer(mode, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
