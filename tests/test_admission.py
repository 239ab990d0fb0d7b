"""One admission path: every face gives the same 422 for a long message and the same 503 when busy.

The faces are the real ones (`create_app`, the Gradio chat handler), the index is real;
the chat model is a small stand-in whose queue is the real `ChatQueue`, so that a place
can be held while each face is asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.admission import admit, check_text, trim_history
from assistant.errors import Busy, InvalidInput, Unavailable
from assistant.llm.queue import ChatQueue, ChatQueueFull
from assistant.partners.store import PartnerStore
from assistant.pipeline.answer import Turn
from assistant.service import Assistant
from assistant.web.api import create_app
from assistant.web.ui.chat import chat_handler
from tests.conftest import make_settings

QUESTION = "Which technology transfer center serves ASEAN countries?"
PAGE = "https://www.partner.example"


class QueuedModel:
    """A chat model with the real one-at-a-time queue in front of it."""

    backend = "openai"

    def __init__(self) -> None:
        self.queue = ChatQueue(concurrency=1, max_waiting=0, wait_timeout=5)
        self.calls = 0

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, schema: object = None, token_bias: object = None, prefix: str = "") -> Iterator[str]:
        with self.queue.turn():
            self.calls += 1
            yield "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        return True, "queued"

    def close(self) -> None:
        pass


@pytest.fixture
def model() -> QueuedModel:
    return QueuedModel()


@pytest.fixture
def assistant(index_dir: Path, embedder, model: QueuedModel, tmp_path: Path) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_MAX_MESSAGE_CHARS=60, ASSISTANT_STATE_DIR=tmp_path / "state"
    )
    a = Assistant(settings, embedder, model)  # type: ignore[arg-type]
    yield a
    a.close()


@pytest.fixture
def client(assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(assistant=assistant, with_ui=False)) as c:
        yield c


@pytest.fixture
def partner_key(assistant: Assistant, client: TestClient) -> Iterator[str]:
    store = PartnerStore.from_settings(assistant.settings)
    _, key = store.add("partner", [PAGE], per_minute=100, per_day=1000)
    client.app.state.partners = store  # type: ignore[attr-defined]
    yield key
    store.close()


def _faces(client: TestClient, key: str, message: str) -> dict[str, Any]:
    """The same question through each HTTP face: name -> response."""
    return {
        "chat": client.post("/v1/chat", json={"message": message}),
        "chat-stream": client.post("/v1/chat", json={"message": message, "stream": True}),
        "openai": client.post(
            "/v1/chat/completions",
            json={"model": "techtransfer-assistant", "messages": [{"role": "user", "content": message}]},
        ),
        "openai-stream": client.post(
            "/v1/chat/completions",
            json={"model": "techtransfer-assistant", "stream": True, "messages": [{"role": "user", "content": message}]},
        ),
        "widget": client.post(
            "/v1/widget/chat", json={"message": message}, headers={"Origin": PAGE, "X-Partner-Key": key}
        ),
    }


def _detail(name: str, response: Any) -> str:
    body = response.json()
    return str(body["error"]["message"] if name.startswith("openai") else body["detail"])


def _ui_reply(assistant: Assistant, message: str) -> tuple[str, str]:
    """(text left in the box, last chat message) after sending `message` in the UI."""
    box, chat, _ = list(chat_handler(assistant)(message, [], []))[-1]
    return box, str(chat[-1]["content"])


# ------------------------------------------------------------------------ every face


def test_every_face_refuses_a_long_message_with_the_same_422(
    assistant: Assistant, client: TestClient, partner_key: str, model: QueuedModel
) -> None:
    long = "x" * 61  # the limit is set to 60 above, not the 4,000 default
    for name, response in _faces(client, partner_key, long).items():
        assert response.status_code == 422, (name, response.text)
        assert "at most 60 characters (got 61)" in _detail(name, response), name
    box, reply = _ui_reply(assistant, long)
    assert box == long  # kept, to be shortened
    assert "at most 60 characters (got 61)" in reply
    assert model.calls == 0
    assert assistant.queue is not None and assistant.queue.snapshot()["admitted"] == 0


def test_every_face_answers_503_with_retry_after_when_the_queue_is_full(
    assistant: Assistant, client: TestClient, partner_key: str, model: QueuedModel
) -> None:
    held = model.queue.admit()  # the only place: concurrency 1, nobody may wait
    try:
        for name, response in _faces(client, partner_key, QUESTION).items():
            assert response.status_code == 503, (name, response.text)
            assert response.headers["content-type"].startswith("application/json"), name
            assert int(response.headers["retry-after"]) >= 1, name
            assert "busy" in _detail(name, response) and "ASSISTANT_MAX_QUEUE" in _detail(name, response), name
        assert client.post(  # the widget's CORS headers come with the refusal, or the page cannot read it
            "/v1/widget/chat", json={"message": QUESTION}, headers={"Origin": PAGE, "X-Partner-Key": partner_key}
        ).headers["access-control-allow-origin"] == PAGE
        box, reply = _ui_reply(assistant, QUESTION)
        assert box == QUESTION and "busy" in reply
        assert model.calls == 0
    finally:
        held.release()
    # the place given back, every face answers again
    for name, response in _faces(client, partner_key, QUESTION).items():
        assert response.status_code == 200, (name, response.text)
    assert "ASEAN" in _ui_reply(assistant, QUESTION)[1]
    assert model.queue.snapshot()["admitted"] == 0


# ------------------------------------------------------------------------ admission itself


def test_check_text_names_the_field_and_the_fix() -> None:
    assert check_text("ok", field="message", limit=2) == "ok"
    for text, words in [(" \n", "empty"), ("a\x00b", "NUL"), ("abc", "at most 2 characters (got 3)")]:
        with pytest.raises(InvalidInput, match=re.escape(words)) as err:
            check_text(text, field="message", limit=2)
        assert err.value.status == 422 and err.value.field == "message"


def test_history_is_cut_to_the_last_turns_and_checked() -> None:
    turns = [Turn("user", f"q{i}") for i in range(5)]
    assert trim_history(turns, 2, limit=10) == turns[-2:]
    assert trim_history(turns, 0, limit=10) == []
    with pytest.raises(InvalidInput, match=r"history\.4\.content: at most 3"):
        trim_history([*turns[:4], Turn("assistant", "long")], 5, limit=3)
    with pytest.raises(InvalidInput, match="NUL"):
        trim_history([Turn("user", "a\x00")], 5, limit=10)


def test_admit_probes_the_index_before_taking_a_place(embedder, tmp_path: Path, model: QueuedModel) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "no-index")
    a = Assistant(settings, embedder, model)  # type: ignore[arg-type]
    with pytest.raises(Unavailable, match="ingest"):
        admit(a, QUESTION)
    assert model.queue.snapshot()["admitted"] == 0


def test_an_admitted_turn_holds_its_place_until_it_ends(assistant: Assistant, model: QueuedModel) -> None:
    turn = admit(assistant, QUESTION, [Turn("user", "earlier")] * 30)
    assert len(turn.history) == assistant.settings.max_history_turns
    with pytest.raises(ChatQueueFull) as err:
        admit(assistant, QUESTION)
    assert isinstance(err.value, Busy) and err.value.status == 503
    events = list(turn.events())
    assert events[-1].answer.backend == "openai"  # type: ignore[union-attr]
    assert model.queue.snapshot()["admitted"] == 0
    admit(assistant, QUESTION).release()  # room again
