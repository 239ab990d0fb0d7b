"""Run the local GGUF chat model as a llama-cpp-python OpenAI-compatible server subprocess.

`LocalModelServer` starts `python -m llama_cpp.server` on a loopback port, waits until it
answers, warms it up, restarts it if it dies, and stops it (with its whole process group)
on `stop()`, on leaving a `with` block, at interpreter exit, and if the parent dies.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

LOG_TAIL_LINES = 20
_POLL_INTERVAL = 0.25
_WARMUP_MIN_TIMEOUT = 60.0

# Run in the child before the server: a watchdog thread that ends the server when its
# parent disappears (atexit does not run if the parent is SIGKILLed), then the server
# module exactly as `python -m llama_cpp.server ARGS` would.
_CHILD_BOOTSTRAP = """\
import os, runpy, sys, threading, time
_parent = os.getppid()
def _watch():
    while True:
        time.sleep(1.0)
        if os.getppid() != _parent:
            os._exit(0)
threading.Thread(target=_watch, name="parent-watchdog", daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LocalModelError(RuntimeError):
    """The local model server cannot start or answer; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None:
        return "(no log: pass log_path to see the server output)"
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(log {path} unreadable)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


# Live servers, stopped at interpreter exit (weak: a server that is garbage is not kept).
_LIVE: weakref.WeakSet[LocalModelServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=5)


class LocalModelServer:
    """A llama-cpp-python OpenAI-compatible server for one GGUF model, as a subprocess."""

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 2,
        n_ctx: int = 4096,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        start_timeout: float = 180.0,
        chat_format: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.threads = threads
        self.n_ctx = n_ctx
        self.host = host
        # A restart reuses the port, so base_url stays valid for clients made earlier.
        self.port = port if port is not None else free_port(host)
        self.log_path = Path(log_path) if log_path is not None else None
        self.start_timeout = start_timeout
        self.chat_format = chat_format
        self._proc: subprocess.Popen[bytes] | None = None
        self._model_name: str | None = None
        self._lock = threading.RLock()
        self.restarts = 0

    # ------------------------------------------------------------------ properties

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """The model id the server reports in /v1/models (the `model` of requests)."""
        if self._model_name is None:
            raise LocalModelError(
                "The local model server has not been started; call start() first."
            )
        return self._model_name

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        """The server command line (the child runs it behind a parent watchdog)."""
        args = [
            "--model", str(self.model_path),
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
            # The server's default keeps the logits of every prompt token (n_ctx × vocab
            # floats, for `logprobs`), which no request here asks for: copying them costs
            # prompt time and hundreds of MB per process.
            "--logits_all", "false",
        ]  # fmt: skip
        if self.chat_format:
            args += ["--chat_format", self.chat_format]
        return [sys.executable, "-c", _CHILD_BOOTSTRAP, *args]

    # ------------------------------------------------------------------ lifecycle

    def is_running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def start(self) -> None:
        """Start the server, wait until it answers and warm it up; no-op if running."""
        with self._lock:
            if self.is_running():
                return
            self._cleanup_dead()
            self._check_installed()
            if not self.model_path.is_file():
                raise LocalModelError(
                    f"Local model file not found: {self.model_path}. Run `make setup`, "
                    "or set ASSISTANT_LOCAL_MODEL_PATH to a .gguf file."
                )
            self._launch()
            deadline = time.monotonic() + self.start_timeout
            try:
                self._wait_ready(deadline)
                self._warm_up(deadline)
            except BaseException:
                self._kill()
                raise

    def ensure_running(self) -> bool:
        """Start the server if it is not running (e.g. it died); True if it (re)started."""
        with self._lock:
            if self.is_running():
                return False
            had_started = self._model_name is not None  # set by every successful start
            self.start()
            if had_started:
                self.restarts += 1
            return True

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the server's process group, then SIGKILL after `timeout` seconds."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    proc.wait(timeout=timeout)
            # Children left in the group (there should be none) go too.
            self._signal(signal.SIGKILL)
            self._proc = None
            _LIVE.discard(self)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"LocalModelServer({self.model_path.name!r}, {self.base_url}, {state})"

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_installed() -> None:
        for module in ("llama_cpp", "starlette_context", "sse_starlette"):
            if importlib.util.find_spec(module) is None:
                raise LocalModelError(
                    "llama-cpp-python with its server extra is not installed "
                    f"(no module {module!r}). Run `make setup`, or choose another backend "
                    "with ASSISTANT_LLM=openai or ASSISTANT_LLM=extractive."
                )

    def _launch(self) -> None:
        log: IO[bytes] | int
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
        else:
            log = subprocess.DEVNULL
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # own process group: stop() kills all of it
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **kwargs,
            )
        except OSError as exc:
            raise LocalModelError(f"Cannot start the local model server: {exc}") from exc
        finally:
            if not isinstance(log, int):
                log.close()  # the child has its own copy
        _LIVE.add(self)

    def _wait_ready(self, deadline: float) -> None:
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                proc = self._proc
                assert proc is not None
                code = proc.poll()
                if code is not None:
                    raise LocalModelError(
                        f"The local model server exited with code {code} while starting "
                        f"(model {self.model_path}). Last lines of its log:\n"
                        f"{_log_tail(self.log_path)}\n"
                        "Check the model file (`make setup`), ASSISTANT_LOCAL_CTX and free memory."
                    )
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        data = response.json().get("data") or []
                        self._model_name = str(data[0]["id"]) if data else str(self.model_path)
                        return
                except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
                    pass
                if time.monotonic() >= deadline:
                    raise LocalModelError(
                        f"The local model server did not answer within {self.start_timeout:.0f} s. "
                        "Raise ASSISTANT_LOCAL_START_TIMEOUT or use a smaller model. "
                        f"Last lines of its log:\n{_log_tail(self.log_path)}"
                    )
                time.sleep(_POLL_INTERVAL)

    def _warm_up(self, deadline: float) -> None:
        """One tiny completion, so the first real request does not pay for reading weights."""
        timeout = max(deadline - time.monotonic(), _WARMUP_MIN_TIMEOUT)
        body = {
            "model": self.model_name,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1,
            "temperature": 0.0,
            "stream": False,
        }
        try:
            with httpx.Client(timeout=timeout, trust_env=False) as client:
                response = client.post(f"{self.base_url}/chat/completions", json=body)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LocalModelError(
                f"The local model server started but failed its warm-up request ({exc}). "
                f"Last lines of its log:\n{_log_tail(self.log_path)}"
            ) from exc

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if os.name == "posix":
                os.killpg(proc.pid, sig)  # the group id is the leader's pid
            elif sig == signal.SIGTERM:  # pragma: no cover - Windows
                proc.terminate()
            else:  # pragma: no cover - Windows
                proc.kill()

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self._proc = None
        _LIVE.discard(self)

    def _cleanup_dead(self) -> None:
        """Reap a dead server and kill anything left in its group before a restart."""
        if self._proc is not None and self._proc.poll() is not None:
            self._signal(signal.SIGKILL)
