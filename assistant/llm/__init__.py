"""Chat model backends behind one small protocol (`assistant.llm.base.ChatModel`).

- `openai`: any OpenAI-compatible endpoint (`endpoint.OpenAIChatModel`).
- `local`: the bundled Qwen2.5 GGUF behind llama.cpp's server (`local.LocalChatModel`).
- `extractive`: no chat model at all (`build_chat_model` returns None).

Both real backends sit behind a `queue.ChatQueue` and see messages through
`guard.neutralize_instructions`.
"""

from __future__ import annotations

from assistant.llm.base import ChatModel, ChatModelError
from assistant.llm.endpoint import OpenAIChatModel
from assistant.llm.local import LocalChatModel
from assistant.llm.queue import queue_for
from assistant.settings import Settings


def build_chat_model(settings: Settings, *, start_local: bool = True) -> ChatModel | None:
    """The configured chat model, or None for the extractive backend."""
    if settings.llm == "extractive":
        return None
    if settings.llm == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key and not settings.openai_base_url:
            raise ChatModelError(
                "ASSISTANT_LLM=openai needs OPENAI_API_KEY (and OPENAI_BASE_URL for a "
                "self-hosted endpoint). Set them, or use ASSISTANT_LLM=local or extractive."
            )
        return OpenAIChatModel(
            base_url=settings.openai_base_url,
            api_key=key or "not-needed",
            model=settings.model,
            timeout=settings.llm_timeout,
            queue=queue_for(settings, "openai"),
            deadline=settings.llm_deadline,
            json_mode=settings.llm_json,
        )
    return LocalChatModel(settings, start=start_local)


