"""JSON log lines (`ASSISTANT_LOG_FORMAT`), the request id on every record, `assistant serve`'s set-up."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.cli.main import main
from assistant.telemetry import logs
from tests.conftest import make_settings


def record(msg: str = "hello %s", *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            info = sys.exc_info()
    r = logging.LogRecord("assistant.test", logging.WARNING, __file__, 1, msg, args or ("world",), info)
    for key, value in extra.items():
        setattr(r, key, value)
    return r


def test_a_record_is_one_json_line() -> None:
    line = logs.JsonFormatter().format(record(exc=True, route="/v1/chat", status=200))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "WARNING" and data["logger"] == "assistant.test"
    assert data["message"] == "hello world"
    assert data["time"].endswith("+00:00")
    assert data["request_id"] is None
    assert "ValueError: bad value" in data["exc_info"]
    assert data["route"] == "/v1/chat" and data["status"] == 200


def test_the_request_id_comes_from_the_context() -> None:
    token = logs.request_id.set("abc123")
    try:
        r = record()
        logs.RequestIdFilter().filter(r)
        assert json.loads(logs.JsonFormatter().format(r))["request_id"] == "abc123"
        assert json.loads(logs.JsonFormatter().format(record()))["request_id"] == "abc123"
    finally:
        logs.request_id.reset(token)
    assert logs.current_request_id() is None


def test_chinese_text_stays_readable() -> None:
    assert "技术转移" in logs.JsonFormatter().format(record("问题: %s", "技术转移"))


def test_the_format_defaults_by_environment() -> None:
    assert make_settings().log_style == "text"
    assert make_settings(ASSISTANT_ENV="production").log_style == "json"
    assert make_settings(ASSISTANT_ENV="production", ASSISTANT_LOG_FORMAT="text").log_style == "text"
    assert make_settings(ASSISTANT_LOG_FORMAT="").log_style == "text"


@pytest.fixture
def clean_root() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("assistant.access", "uvicorn", "uvicorn.error")}
    yield root
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)


def test_configure_writes_json_to_stderr_once(
    clean_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logs.configure("json")
    assert logs.configure("json") is handler  # again: the same one handler
    assert [h for h in clean_root.handlers if h.get_name() == logs.HANDLER_NAME] == [handler]
    token = logs.request_id.set("rid-9")
    try:
        logging.getLogger("assistant.access").info("GET / 200", extra={"status": 200})
    finally:
        logs.request_id.reset(token)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    data = json.loads(line)
    assert data["request_id"] == "rid-9" and data["status"] == 200 and data["logger"] == "assistant.access"
    logs.configure("text")
    logging.getLogger("assistant.access").info("plain")
    assert capsys.readouterr().err.strip().splitlines()[-1] == "INFO assistant.access: plain"


def test_serve_sets_up_json_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_root: logging.Logger, index_dir: Path
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.chdir(tmp_path)  # no .env file
    result = CliRunner().invoke(
        main,
        ["serve"],
        env={
            "ASSISTANT_LOG_FORMAT": "json",
            "ASSISTANT_INDEX_DIR": str(index_dir),
            "ASSISTANT_LLM": "extractive",
            "CHROMA_HOST": "",
            "ASSISTANT_STATE_DIR": str(tmp_path / "state"),
        },
    )
    assert result.exit_code == 0, result.output
    assert seen["log_config"] is None and seen["access_log"] is False
    ours = [h for h in clean_root.handlers if h.get_name() == logs.HANDLER_NAME]
    assert len(ours) == 1 and isinstance(ours[0].formatter, logs.JsonFormatter)
