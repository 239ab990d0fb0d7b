"""Recorded model replies: the same request is answered from disk, a new one by the model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.eval.replay import RecordedChatModel
from assistant.llm.base import ChatModelError


class CountingModel:
    backend = "openai"

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def stream(self, messages, *, max_tokens: int, schema=None, token_bias=None, prefix="") -> Iterator[str]:  # type: ignore[no-untyped-def]
        self.calls += 1
        yield "par"
        if self.fail:
            raise ChatModelError("the model stopped half-way")
        yield f"t {messages[-1]['content']}"

    def complete(self, messages, *, max_tokens: int) -> str:  # type: ignore[no-untyped-def]
        self.calls += 1
        return f"done {messages[-1]['content']}"

    def ready(self) -> tuple[bool, str]:
        return True, "counting"

    def close(self) -> None:
        pass


def test_a_request_seen_before_is_replayed_and_a_new_one_recorded(tmp_path: Path) -> None:
    inner = CountingModel()
    model = RecordedChatModel(inner, tmp_path / "replies")
    ask = [{"role": "user", "content": "q1"}]
    assert "".join(model.stream(ask, max_tokens=10)) == "part q1"
    assert "".join(RecordedChatModel(inner, tmp_path / "replies").stream(ask, max_tokens=10)) == "part q1"
    assert inner.calls == 1
    # Another message, token limit or schema is another request.
    "".join(model.stream([{"role": "user", "content": "q2"}], max_tokens=10))
    "".join(model.stream(ask, max_tokens=11))
    "".join(model.stream(ask, max_tokens=10, schema={"type": "object"}))
    "".join(model.stream(ask, max_tokens=10, token_bias={" false": 4.6}))
    "".join(model.stream(ask, max_tokens=10, prefix="{"))
    assert inner.calls == 6
    # No bias or reply start is the same request as an empty one: replies recorded before
    # either existed replay.
    "".join(model.stream(ask, max_tokens=10, token_bias={}, prefix=""))
    assert inner.calls == 6
    assert model.complete(ask, max_tokens=5) == model.complete(ask, max_tokens=5) == "done q1"
    assert inner.calls == 7 and model.replayed == 2 and model.recorded == 7


def test_a_failed_reply_is_not_recorded(tmp_path: Path) -> None:
    model = RecordedChatModel(CountingModel(fail=True), tmp_path)
    with pytest.raises(ChatModelError):
        "".join(model.stream([{"role": "user", "content": "q"}], max_tokens=10))
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_record_asks_the_model_again(tmp_path: Path) -> None:
    inner = CountingModel()
    model = RecordedChatModel(inner, tmp_path)
    ask = [{"role": "user", "content": "q"}]
    model.complete(ask, max_tokens=5)
    next(tmp_path.iterdir()).write_text("{not json", "utf-8")
    assert model.complete(ask, max_tokens=5) == "done q" and inner.calls == 2
