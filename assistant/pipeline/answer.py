"""Stage 6, answer: rewrite, retrieve, generate, cite; stream tokens, end with the checked answer.

The steps are the same for every backend:

1. a follow-up is rewritten into a standalone question using the history;
2. hybrid retrieval finds the passages; with nothing relevant, the answer is "not
   covered" without asking a model;
3. the chat model answers from the numbered passages (a system and a user message
   rendered from the `prompts/` templates), its text streamed as it arrives; with no
   model, or when it fails or times out, the answer is assembled from the best passage
   sentences instead (and says so);
4. every sentence is tied to a verbatim quote, checked against the document; what
   cannot be checked is dropped. No checked sentence left → `grounded: false`.

Token events carry the model's text as it arrives; the final `done` answer is the
checked one and is authoritative (a UI replaces the streamed text with it).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from assistant.llm.base import ChatModel, ChatModelError, Message
from assistant.llm.guard import looks_like_instruction
from assistant.pipeline.citations import QuoteFinder, cite, render, verify_quote
from assistant.pipeline.domain import Names
from assistant.pipeline.embedding import cosine
from assistant.pipeline.prompts import PromptSet
from assistant.pipeline.retrieve import Filters, HybridRetriever
from assistant.text import detect_language, han_ratio, to_simplified, to_traditional
from assistant.types import Answer, Citation, SearchHit

log = logging.getLogger(__name__)

NO_ANSWER = "NO_ANSWER"

LANGUAGE_NAMES = {
    "en": "English",
    "zh-Hans": "Simplified Chinese (简体中文)",
    "zh-Hant": "Traditional Chinese (繁體中文)",
}
REMINDER = {
    "en": "Answer in English, in full sentences, each followed by its passage number like [1].",
    "zh-Hans": "请用简体中文完整地回答，每句话后面用方括号写出处的段落编号，例如[1]。",
    "zh-Hant": "請用繁體中文完整地回答，每句話後面用方括號寫出處的段落編號，例如[1]。",
}
NOT_COVERED = {
    "en": "The documents do not cover this question.",
    "zh-Hans": "文档中没有涉及这个问题。",
    "zh-Hant": "文件中沒有涉及這個問題。",
}
EXTRACTIVE_INTRO = {
    "en": "From the documents:",
    "zh-Hans": "文档中的相关内容：",
    "zh-Hant": "文件中的相關內容：",
}
FALLBACK_NOTICE = {
    "en": "The language model is unavailable ({reason}); this answer is assembled from the documents' own sentences.",
    "zh-Hans": "语言模型暂不可用（{reason}）；以下回答直接摘自文档原文。",
    "zh-Hant": "語言模型暫不可用（{reason}）；以下回答直接摘自文件原文。",
}

# Below this cosine similarity between the question and the best passage, nothing in the
# corpus is about the question: answer "not covered" without asking a model.
MIN_RELEVANCE = 0.2
# A sentence picked by the extractive backend must be at least this close to the question.
EXTRACTIVE_MIN = 0.3


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: Answer


Event = TokenEvent | DoneEvent


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


class AnswerEngine:
    """Answers questions over one retriever with one (or no) chat model."""

    def __init__(
        self,
        retriever: HybridRetriever,
        chat_model: ChatModel | None,
        prompts: PromptSet,
        *,
        k: int = 5,
        max_answer_tokens: int = 400,
        names: Names | None = None,
    ) -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.prompts = prompts
        self.k = k
        self.max_answer_tokens = max_answer_tokens
        # Small models writing English over Chinese passages leave some names untranslated.
        self.names = names if names is not None else Names()
        self.finder = QuoteFinder(retriever.embedder)

    @property
    def backend(self) -> str:
        return self.chat_model.backend if self.chat_model else "extractive"

    # ------------------------------------------------------------------ public API

    def answer(self, message: str, history: list[Turn] | None = None) -> Answer:
        final: Answer | None = None
        for event in self.stream(message, history or []):
            if isinstance(event, DoneEvent):
                final = event.answer
        assert final is not None
        return final

    def stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Event]:
        history = history or []
        language = detect_language(message)
        query = self.rewrite(message, history)
        hits = self.retriever.search(query, self.k, Filters())
        best = max((h.dense_score or 0.0 for h in hits), default=0.0)
        if not hits or best < MIN_RELEVANCE:
            yield from self._emit(self._not_covered(language, query))
            return
        if self.chat_model is None:
            yield from self._emit(self._extractive(message, query, hits, language))
            return
        raw_parts: list[str] = []
        try:
            for token in self._generate(message, hits, language):
                raw_parts.append(token)
                yield TokenEvent(token)
        except ChatModelError as exc:
            log.warning("chat model failed, falling back to extractive: %s", exc)
            answer = self._extractive(message, query, hits, language)
            answer.notice = FALLBACK_NOTICE[language].format(reason=_short(str(exc)))
            yield DoneEvent(answer)
            return
        yield DoneEvent(self._finish("".join(raw_parts), message, query, hits, language))

    def rewrite(self, message: str, history: list[Turn]) -> str:
        """A standalone version of a follow-up question, for retrieval."""
        users = [t.content for t in history if t.role == "user"]
        if not users:
            return message
        if self.chat_model is not None:
            convo = "\n".join(f"{t.role}: {_short(t.content, 600)}" for t in history[-6:])
            prompt = self.prompts.condense.render(history=convo, question=message)
            try:
                out = self.chat_model.complete(
                    [{"role": "user", "content": prompt}], max_tokens=96
                ).strip()
                out = out.splitlines()[0].strip().strip('"“”') if out else ""
                if 2 <= len(out) <= 500:
                    return out
            except ChatModelError as exc:
                log.warning("question rewrite failed, using the history as is: %s", exc)
        # No model: the previous question carries the subject of the follow-up.
        return f"{users[-1]} {message}"

    # ---------------------------------------------------------------- generation

    def messages(self, question: str, hits: list[SearchHit], language: str) -> list[Message]:
        context = "\n\n".join(
            f"Passage [{n}] ({h.document.title}"
            + (f" — {h.chunk.heading}" if h.chunk.heading and h.chunk.heading != h.document.title else "")
            + f"):\n{h.chunk.text}"
            for n, h in enumerate(hits, start=1)
        )
        system = self.prompts.answer_system.render(
            language_name=LANGUAGE_NAMES[language], no_answer=NO_ANSWER
        )
        user = self.prompts.answer_user.render(
            context=context, question=question, reminder=REMINDER[language]
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _generate(self, question: str, hits: list[SearchHit], language: str) -> Iterator[str]:
        assert self.chat_model is not None
        pending = ""
        released = False
        for token in self.chat_model.stream(
            self.messages(question, hits, language), max_tokens=self.max_answer_tokens
        ):
            if released:
                yield to_traditional(token) if language == "zh-Hant" else token
                continue
            # Hold tokens back while they could still be the refusal sentinel.
            pending += token
            if NO_ANSWER.startswith(pending.strip()) or NO_ANSWER in pending:
                continue
            released = True
            yield to_traditional(pending) if language == "zh-Hant" else pending
        if not released and pending and NO_ANSWER not in pending:
            yield pending

    def _finish(
        self, raw: str, question: str, query: str, hits: list[SearchHit], language: str
    ) -> Answer:
        raw = raw.strip()
        if not raw or NO_ANSWER in raw[:40]:
            return self._not_covered(language, query)
        # The standalone query gives follow-up claims ("it was founded…") their subject.
        result = cite(raw.replace(NO_ANSWER, ""), query, hits, self.finder)
        if not result.grounded:
            return self._not_covered(language, query)
        text = render(result.sentences)
        if language == "en":
            text = _english_terms(text, self.names)
        elif language == "zh-Hant":
            text = to_traditional(text)
        elif language == "zh-Hans" and han_ratio(text) > 0.3:
            text = to_simplified(text)
        return Answer(
            answer=text,
            citations=result.citations,
            grounded=True,
            backend=self.backend,
            query=query,
        )

    # ---------------------------------------------------------------- no model

    def _extractive(
        self, question: str, query: str, hits: list[SearchHit], language: str
    ) -> Answer:
        """The best-matching passage sentences, verbatim, each with its citation."""
        qvec = self.retriever.embedder.embed_query(to_simplified(query))
        scored: list[tuple[float, int, int, int]] = []
        for n, hit in enumerate(hits[:3]):
            spans, vectors = self.finder.sentences(hit.chunk)
            sims = cosine(qvec[None, :], vectors)[0]
            for (a, b), sim in zip(spans, sims, strict=True):
                if looks_like_instruction(hit.chunk.text[a:b]):
                    continue  # an instruction planted in a document is never quoted back
                # Earlier-ranked passages get a small edge: retrieval already agreed.
                scored.append((float(sim) - 0.02 * n, n, a, b))
        scored.sort(reverse=True)
        picked: list[tuple[int, int, int]] = []
        for score, n, a, b in scored:
            if score < EXTRACTIVE_MIN or len(picked) == 3:
                break
            if any(p[0] == n and not (b <= p[1] or a >= p[2]) for p in picked):
                continue
            picked.append((n, a, b))
        citations: list[Citation] = []
        lines = []
        for i, (n, a, b) in enumerate(picked, start=1):
            hit = hits[n]
            c = verify_quote(hit.document, hit.chunk, a, b)
            if c is None:
                continue
            c = dataclasses.replace(c, n=i)
            citations.append(c)
            lines.append(f"- {c.quote} [{i}]")
        if not citations:
            return self._not_covered(language, query)
        return Answer(
            answer=EXTRACTIVE_INTRO[language] + "\n" + "\n".join(lines),
            citations=citations,
            grounded=True,
            backend="extractive",
            query=query,
        )

    def _not_covered(self, language: str, query: str) -> Answer:
        return Answer(NOT_COVERED[language], [], False, self.backend, query=query)

    @staticmethod
    def _emit(answer: Answer) -> Iterator[Event]:
        yield TokenEvent(answer.answer)
        yield DoneEvent(answer)


def _short(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _english_terms(text: str, names: Names) -> str:
    simplified = to_simplified(text)
    replaced = simplified
    for zh, en in sorted(names.english, key=lambda kv: -len(kv[0])):
        replaced = replaced.replace(zh, f" {en} ")
    # Only the replaced spans change: keep the original where nothing was mapped.
    out = text
    if replaced != simplified:
        out = re.sub(r"\s+([,.;:!?)\]])", r"\1", re.sub(r"(\() +| {2,}", lambda m: m.group(1) or " ", replaced))
        out = re.sub(r"\s+(\[\d)", r" \1", out).strip()
    if not names.china_partners:
        return out
    # A small model may half-translate "中国—" before a partner's name as "Chinese—".
    partners = "|".join(re.escape(p) for p in names.china_partners)
    return re.sub(rf"\bChinese\s*[—–-]\s*(?={partners})", "China–", out)
