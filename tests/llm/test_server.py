"""The local model server with the real bundled 1.5B model (slow: loads a 1.1 GB model).

Without the model packages or llama-cpp-python these tests fail, unless
ASSISTANT_ALLOW_SKIP_LOCAL=1 is set, in which case they are skipped.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.llm.model_file import DEFAULT_MODEL, PACKAGED_MODELS, ModelFileError, ensure_model_file
from assistant.llm.server import LocalModelError, LocalModelServer
from assistant.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

MODELS_DIR = PROJECT_ROOT / ".cache" / "models"


def _unavailable(reason: str) -> None:
    if os.environ.get("ASSISTANT_ALLOW_SKIP_LOCAL") == "1":
        pytest.skip(reason)
    pytest.fail(f"{reason} (set ASSISTANT_ALLOW_SKIP_LOCAL=1 to skip these tests instead)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_dead(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def model_path() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        _unavailable("llama-cpp-python is not installed (run `make setup`)")
    first = PACKAGED_MODELS[DEFAULT_MODEL].module_names()[0]
    if importlib.util.find_spec(first) is None:
        _unavailable(f"the bundled model packages ({first} …) are not installed (run `make setup`)")
    try:
        return ensure_model_file(MODELS_DIR, DEFAULT_MODEL)
    except ModelFileError as exc:
        _unavailable(str(exc))
        raise  # unreachable


@pytest.fixture(scope="module")
def server(
    model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalModelServer]:
    log = tmp_path_factory.mktemp("llm") / "server.log"
    srv = LocalModelServer(model_path, threads=2, n_ctx=2048, log_path=log)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _ask(srv: LocalModelServer, question: str) -> str:
    from openai import OpenAI

    client = OpenAI(base_url=srv.base_url, api_key="local", timeout=300, max_retries=0)
    stream = client.chat.completions.create(
        model=srv.model_name,
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": question},
        ],
        temperature=0,
        max_tokens=24,
        stream=True,
    )
    pieces = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    return "".join(pieces)


def test_streaming_answer(server: LocalModelServer) -> None:
    assert server.is_running()
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    assert server.model_name
    pid = server.pid
    server.start()  # idempotent: no second process
    assert server.pid == pid
    answer = _ask(server, "What is the capital of France?")
    assert answer.strip(), "no streamed text"
    assert "paris" in answer.lower()


def test_restart_after_kill(server: LocalModelServer) -> None:
    old_pid, old_url = server.pid, server.base_url
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not server.is_running()

    # Several request threads notice at once; exactly one restarts it.
    results: list[bool] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(server.ensure_running())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert sorted(results) == [False, False, False, True]
    assert server.is_running() and server.pid != old_pid
    assert server.base_url == old_url  # clients made earlier still work
    assert server.ensure_running() is False
    assert _ask(server, "Say hello.").strip()


def test_stop_leaves_no_process(server: LocalModelServer) -> None:
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not server.is_running()
    assert not _pid_alive(pid)
    assert not _group_alive(pid)
    server.stop()  # idempotent


def test_context_manager(model_path: Path) -> None:
    with LocalModelServer(model_path, n_ctx=1024) as srv:
        pid = srv.pid
        assert pid is not None and srv.is_running()
    assert not _pid_alive(pid) and not _group_alive(pid)


@pytest.mark.parametrize("parent_end", ["exit", "sigkill"])
def test_server_does_not_outlive_its_parent(model_path: Path, parent_end: str) -> None:
    """Normal exit without stop() (atexit) and SIGKILL of the parent (watchdog)."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from assistant.llm.server import LocalModelServer
        srv = LocalModelServer(Path({str(model_path)!r}), n_ctx=512)
        srv.start()
        print(srv.pid, flush=True)
        if {parent_end!r} == "sigkill":
            time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    pid = None
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"parent printed {line!r}"
        pid = int(line)
        if parent_end == "sigkill":
            parent.kill()
        parent.wait(timeout=60)
        assert _wait_dead(pid, timeout=15), f"server {pid} outlived its parent ({parent_end})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if pid is not None and _pid_alive(pid):  # do not leave an orphan behind a failure
            os.killpg(pid, signal.SIGKILL)


def test_start_failure_reports_log(tmp_path: Path, model_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 4096)
    log = tmp_path / "bad.log"
    srv = LocalModelServer(bad, log_path=log, start_timeout=120)
    with pytest.raises(LocalModelError) as err:
        srv.start()
    message = str(err.value)
    assert "exited" in message and "Last lines of its log" in message
    assert not srv.is_running()


def test_missing_model_file(tmp_path: Path, model_path: Path) -> None:
    with pytest.raises(LocalModelError, match="make setup"):
        LocalModelServer(tmp_path / "absent.gguf").start()
