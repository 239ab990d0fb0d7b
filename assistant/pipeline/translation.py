"""Machine translation of evidence quotes between English and Chinese (`POST /v1/translate`).

`Assistant.translate` does the work; this module holds its pieces: the result type, the
bounded LRU cache of results, the prompt's messages and the clean-up of the model's output.
Between the two Chinese scripts no model is asked: OpenCC converts (`script_convert`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from assistant.llm.base import Message
from assistant.pipeline.answer import LANGUAGE_NAMES
from assistant.pipeline.prompts import PromptSet
from assistant.text import in_script

Target = Literal["en", "zh-Hans", "zh-Hant"]
TARGETS: tuple[str, ...] = get_args(Target)
CACHE_ENTRIES = 512
SCRIPT_BACKEND = "opencc"  # zh-Hans ↔ zh-Hant: a character conversion, no model
NO_BACKEND = "none"  # English to English: the text as it is

# A label some models put before their output ("Translation:", "译文：").
_LABEL = re.compile(r"^\s*(?:translation|译文|譯文|翻译|翻譯)\s*[:：]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Translation:
    translation: str
    target: str
    source_language: str
    backend: str
    machine_translation: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TranslationCache:
    """A thread-safe LRU of translations keyed by (text, target), at most `size` entries."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self.size = max(1, size)
        self._items: OrderedDict[tuple[str, str], Translation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, target: str) -> Translation | None:
        with self._lock:
            found = self._items.get((text, target))
            if found is not None:
                self._items.move_to_end((text, target))
            return found

    def put(self, text: str, target: str, translation: Translation) -> None:
        with self._lock:
            self._items[(text, target)] = translation
            self._items.move_to_end((text, target))
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def translation_messages(prompts: PromptSet, text: str, target: str) -> list[Message]:
    prompt = prompts.translate.render(text=text, language_name=LANGUAGE_NAMES[target])
    return [{"role": "user", "content": prompt}]


def translation_tokens(text: str, cap: int = 4096) -> int:
    """Room for the translation: Chinese ↔ English rarely takes two tokens per source character."""
    return max(128, min(cap, 64 + 2 * len(text)))


def clean_output(raw: str, target: str) -> str:
    """The model's translation without a leading label, in the target's script."""
    return in_script(_LABEL.sub("", raw.strip(), count=1).strip(), target)
