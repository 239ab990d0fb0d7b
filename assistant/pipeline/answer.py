"""Stage 6, answer: rewrite, retrieve, pick evidence, generate claims, check, decide.

The steps are the same for every backend:

1. a follow-up is rewritten into a standalone question using the history;
2. hybrid retrieval finds the passages, sent at once as a `SourcesEvent`; with nothing
   relevant, the answer is "not covered" without asking a model;
3. the question's best sentences become numbered evidence within a token budget
   (`assistant.pipeline.evidence`);
4. the chat model answers in JSON claims, each naming its evidence sentences (free text
   with `[n]` markers where the endpoint has no JSON output); the claims written so far
   stream as a draft. With no model, or when it fails, the best evidence sentences
   themselves are the claims (and the answer says so);
5. every claim is checked against its evidence (`assistant.pipeline.claims`); quotes are
   the evidence spans, exact document slices;
6. the answer is shown only when a surviving claim's evidence holds the kind of thing the
   question asks for (a date, a number, a contact detail, …) about the question's subject
   (`assistant.pipeline.answerability`) and the model did not say the evidence falls
   short. Otherwise the answer says what the documents do not state and cites the closest
   thing they do state under `related`, with `grounded: false`.

Token events carry the draft; the final `done` answer is the checked one and is
authoritative (a UI replaces the streamed text with it).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from assistant.llm.base import ChatModel, ChatModelError, Message
from assistant.pipeline.answerability import AnswerKinds, Kind, coverage
from assistant.pipeline.citations import CitedSentence, QuoteFinder, _renumber, render, verify_quote
from assistant.pipeline.claims import (
    ANSWER_SCHEMA,
    CheckedClaim,
    check_claims,
    draft_text,
    parse_reply,
)
from assistant.pipeline.domain import Names
from assistant.pipeline.evidence import EvidenceItem, is_fragment, render_evidence, select_evidence
from assistant.pipeline.keyword import NAME_TAGS, nouns, query_tokens
from assistant.pipeline.prompts import PromptSet
from assistant.pipeline.retrieve import Filters, HybridRetriever
from assistant.text import detect_language, han_ratio, in_script, normalize, to_simplified, to_traditional
from assistant.types import Answer, Citation, SearchHit

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {
    "en": "English",
    "zh-Hans": "Simplified Chinese (简体中文)",
    "zh-Hant": "Traditional Chinese (繁體中文)",
}
NOT_COVERED = {
    "en": "The documents do not cover this question.",
    "zh-Hans": "文档中没有涉及这个问题。",
    "zh-Hant": "文件中沒有涉及這個問題。",
}
NOT_STATED = {
    "en": "The documents do not state {label} this question asks for.",
    "zh-Hans": "文档中没有写明这个问题所问的{label}。",
    "zh-Hant": "文件中沒有寫明這個問題所問的{label}。",
}
LIST_SEPARATOR = {"en": " or ", "zh-Hans": "或", "zh-Hant": "或"}
ANY_ANSWER = {"en": "the answer", "zh-Hans": "内容", "zh-Hant": "內容"}
CLOSEST = {
    "en": "The closest they state:",
    "zh-Hans": "文档中最接近的内容：",
    "zh-Hant": "文件中最接近的內容：",
}
ALSO_STATED = {
    "en": "The documents also state: “{quote}”",
    "zh-Hans": "文档还写道：“{quote}”",
    "zh-Hant": "文件還寫道：「{quote}」",
}
STATED = {
    "en": "The documents state: “{quote}”",
    "zh-Hans": "文档写道：“{quote}”",
    "zh-Hant": "文件寫道：「{quote}」",
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
# An evidence sentence the extractive backend shows must score at least this.
EXTRACTIVE_MIN = 0.35
# Share of the question's content words (weighted by rarity) the evidence and its
# surroundings must hold (same script).
SUBJECT_MIN = 0.4
# The same for an English question over Chinese evidence, through the glossary's terms.
SUBJECT_MIN_GLOSSARY = 0.2
# A question word in at most this share of passages (or in two, in a small index) names
# something specific: a claim repeating it needs it in its evidence's passages
# (`borrowed_names`).
BORROWED_MAX_SHARE = 0.05
BORROWED_LOOKBACK = 600
# How a Chinese sentence ends (a claim without it gets a full stop).
_CLOSED = re.compile(r"[。！？!?；;…”」』’)）\]]\s*$")
# Characters around an evidence sentence that count as its context for the subject check.
SUBJECT_WINDOW = 150


@dataclass(frozen=True)
class SourcesEvent:
    """The retrieved passages, sent before any model token. `revised`: a second list that
    replaces the first (an English question's translation found other passages)."""

    hits: tuple[SearchHit, ...]
    revised: bool = False

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"sources": [h.as_source(n) for n, h in enumerate(self.hits, start=1)]}
        if self.revised:
            data["revised"] = True
        return data


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: Answer


Event = SourcesEvent | TokenEvent | DoneEvent


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
        kinds: AnswerKinds,
        k: int = 5,
        max_answer_tokens: int = 400,
        prompt_tokens: int = 700,
        answerable_min: float = 0.5,
        count_tokens: Callable[[str], int] | None = None,
        names: Names | None = None,
        query_translator: Callable[[str], str | None] | None = None,
    ) -> None:
        self.retriever = retriever
        self.query_translator = query_translator
        self.chat_model = chat_model
        self.prompts = prompts
        self.kinds = kinds
        self.k = k
        self.max_answer_tokens = max_answer_tokens
        self.prompt_tokens = prompt_tokens
        # Greedy decoding picks " false" over " true" when its biased logit is higher, that
        # is when P(true) / P(false) < p / (1 - p): the bias that asks for probability p.
        bias = math.log(answerable_min / (1.0 - answerable_min))
        self.token_bias = {" false": bias, "false": bias} if bias > 0 else None
        self.count_tokens = count_tokens or estimate_tokens
        # Small models writing English over Chinese passages leave some names untranslated.
        self.names = names if names is not None else Names()
        self.finder = QuoteFinder(retriever.embedder)
        self._df: Counter[str] | None = None  # passages holding each search token, built on first use
        self._known_names = frozenset(
            w.lower() for _, en in self.names.english for w in re.findall(r"[A-Za-z]+", en)
        )

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
        # A follow-up is searched and its evidence chosen with the previous question beside
        # it, so that "who runs it?" stays about the center asked before even when the
        # rewrite lost it; the model sees what "it" refers to, too.
        users = [t.content for t in history if t.role == "user"]
        context = users[-1] if users and self.chat_model is not None else ""
        focus = f"{query} {context}".strip()
        asking = f"{message} (follow-up to: {users[-1]})" if users else message
        hits = self._retrieve(focus, history)
        yield SourcesEvent(tuple(hits))
        searched = self.search_text(query, context)
        if searched != focus:
            # The translation took a model call: the passages found without it were shown
            # meanwhile; those found with it replace them when they differ.
            better = self._retrieve(searched, history)
            if [h.chunk.chunk_id for h in better] != [h.chunk.chunk_id for h in hits]:
                hits = better
                yield SourcesEvent(tuple(hits), revised=True)
        best = max((h.dense_score or 0.0 for h in hits), default=0.0)
        if not hits or best < MIN_RELEVANCE:
            yield from self._emit(self._not_covered(language, query))
            return
        asked = self.kinds.asked(query)
        # Sentences are chosen by what was searched: an English question's Chinese
        # translation shares the Chinese evidence's words.
        evidence = self.evidence(searched, hits, asked, message)
        if not evidence:
            yield from self._emit(self._not_covered(language, query))
            return
        if self.chat_model is None:
            yield from self._emit(self._extractive(query, evidence, asked, language))
            return
        raw_parts: list[str] = []
        draft = ""
        try:
            for token in self.chat_model.stream(
                # The reminder reads the user's words, not the previous question beside them.
                self.messages(asking, evidence, language, asked=message),
                max_tokens=self.max_answer_tokens,
                schema=ANSWER_SCHEMA,
                token_bias=self.token_bias,
                # The JSON answer's opening: a backend that writes it for the model saves
                # the tokens before the first claim's text.
                prefix=self.prompts.answer_start[language],
            ):
                raw_parts.append(token)
                raw = "".join(raw_parts)
                now = draft_text(raw) if raw.lstrip().startswith(("{", "`")) else re.sub(r"\[\d{1,2}\]", "", raw)
                if len(now) > len(draft) and now.startswith(draft):
                    piece = now[len(draft) :]
                    draft = now
                    yield TokenEvent(to_traditional(piece) if language == "zh-Hant" else piece)
        except ChatModelError as exc:
            log.warning("chat model failed, falling back to extractive: %s", exc)
            answer = self._extractive(query, evidence, asked, language)
            answer.notice = FALLBACK_NOTICE[language].format(reason=_short(str(exc)))
            yield DoneEvent(answer)
            return
        yield DoneEvent(self._finish("".join(raw_parts), query, evidence, asked, language))

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

    def search_text(self, query: str, context: str = "") -> str:
        """What retrieval looks for: the question, then `context` (a follow-up's previous
        question). An English question gets its Chinese translation in front
        (`query_translator`: the chat model's, cached), so Chinese passages are found by
        Chinese words, not only through the dictionary; the English stays for English
        documents. Only the question itself is translated: two questions run together
        translate worse, and the previous one already found its passages."""
        plain = f"{query} {context}".strip()
        if self.query_translator is None or detect_language(query) != "en":
            return plain
        translated = self.query_translator(query)
        return f"{translated} {plain}" if translated else plain

    # ---------------------------------------------------------------- evidence

    def _retrieve(self, query: str, history: list[Turn]) -> list[SearchHit]:
        hits = self.retriever.search(query, self.k, Filters())
        users = [t.content for t in history if t.role == "user"]
        if not users:
            return hits
        # A follow-up keeps its subject: the passages of the previous question stay
        # candidates even when the rewrite lost a name.
        seen = {h.chunk.chunk_id for h in hits}
        extra = [h for h in self.retriever.search(users[-1], 2, Filters()) if h.chunk.chunk_id not in seen]
        return [*hits, *(dataclasses.replace(h, rank=len(hits) + i) for i, h in enumerate(extra, start=1))]

    def evidence(
        self, query: str, hits: Sequence[SearchHit], asked: Sequence[Kind], message: str | None = None
    ) -> list[EvidenceItem]:
        """The numbered evidence sentences for `query`, within the prompt budget."""
        fixed = self.messages(message or query, [], "en")
        budget = self.prompt_tokens - sum(self.count_tokens(m["content"]) for m in fixed)
        # A question asking several things gets sentences for each (`query`'s parts: an
        # English question's searched text holds its translation too).
        several = len(self.kinds.parts(message or query)) > 1
        return select_evidence(
            query,
            hits,
            self.finder,
            self.kinds,
            asked,
            budget_tokens=max(budget, 120),
            count_tokens=self.count_tokens,
            parts=self.kinds.parts(query) if several else (),
        )

    def messages(
        self, question: str, evidence: Sequence[EvidenceItem], language: str, *, asked: str | None = None
    ) -> list[Message]:
        """The system message (always the same) and the user message with the evidence; the
        reminder follows what `asked` (the user's own words, default `question`) asks for."""
        system = self.prompts.answer_system.render()
        asked = asked or question
        reminder = self.prompts.reminders.line(asked, language, sentences=len(self.kinds.parts(asked)))
        user = self.prompts.answer_user.render(evidence=render_evidence(evidence), question=question, reminder=reminder)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    # ---------------------------------------------------------------- deciding

    def _finish(
        self, raw: str, query: str, evidence: list[EvidenceItem], asked: list[Kind], language: str
    ) -> Answer:
        parsed = parse_reply(raw)
        check = check_claims(parsed.claims, query, evidence, self.finder, self.kinds, self._known_names)
        for text, why in check.dropped:
            log.info("claim dropped (%s): %s", why, _short(text))
        kept = [dataclasses.replace(c, text=self._in_language(c.text, language)) for c in check.kept]
        if not kept and parsed.answerable and (check.slipped or check.restated):
            # The model found the figure but misread it ("5 billion" over 5亿元), or pointed
            # at its answer but only restated the question: the sentence it cited, quoted,
            # answers in its place if it passes the same rules.
            quotes = self._quotes_of([*check.slipped, *check.restated], language)
            quoted = self._decide(quotes, True, query, evidence, asked, language)
            if quoted.grounded:
                return quoted
        return self._decide(kept, parsed.answerable, query, evidence, asked, language)

    @staticmethod
    def _quotes_of(claims: Sequence[CheckedClaim], language: str) -> list[CheckedClaim]:
        """The evidence sentences of `claims`, each once, as verbatim quotes."""
        items = {(e.hit.chunk.chunk_id, e.start): e for c in claims for e in c.evidence if not is_fragment(e)}
        return [
            CheckedClaim(STATED[language].format(quote=in_script(e.text.strip(), language)), [e])
            for e in items.values()
        ]

    def _decide(
        self,
        kept: list[CheckedClaim],
        model_says: bool | None,
        query: str,
        evidence: list[EvidenceItem],
        asked: list[Kind],
        language: str,
        *,
        backend: str | None = None,
        intro: str | None = None,
    ) -> Answer:
        # Beside a claim about the subject, one that does not name it may stay (it often
        # goes on about the same thing), unless it is about another one.
        shown = []
        for claim in kept:
            if why := self._elsewhere(claim, query):
                log.info("claim dropped (%s): %s", why, _short(claim.text))
            else:
                shown.append(claim)
        about = [c for c in shown if self._names_subject(c, query)]
        # Every checkable thing asked for ("when and where") must stand in some claim, for
        # each part of a question that asks several ("when was A…? when did B…?").
        parts = self.kinds.parts(query)
        wanted = [(p, k) for p in parts for k in (self.kinds.asked(p) if len(parts) > 1 else asked) if k.evidence]
        missing = [
            (p, k) for p, k in wanted
            if not any(self.holds(c, k, query) and (len(parts) == 1 or self.about_subject(c, query, p)) for c in about)
        ]
        # A question asking for several things is answered with the parts the evidence
        # holds, saying which it does not; never when a `required` kind is missing.
        partial = bool(missing) and len(missing) < len(wanted) and not any(k.required for _, k in missing)
        if about and (not missing or partial) and model_says is not False:
            # A part the claims left out but an evidence sentence about its subject holds
            # is quoted rather than called missing (small models answer one part of two).
            for p, kind in list(missing):
                quote = self._quoted_part(kind, shown, evidence, query, language, None if len(parts) == 1 else p)
                if quote is not None:
                    shown = [*shown, quote]
                    missing.remove((p, kind))
            sentences, citations = _cited(shown)
            text = render(sentences)
            if intro:
                text = intro + "\n" + "\n".join(f"- {render([s])}" for s in sentences)
            if missing:
                labels = LIST_SEPARATOR[language].join(dict.fromkeys(k.label(language) for _, k in missing))
                text += ("\n" if intro else " " if language == "en" else "") + NOT_STATED[language].format(label=labels)
            return Answer(
                answer=text, citations=citations, grounded=True, backend=backend or self.backend, query=query
            )
        lacking = list({k.name: k for _, k in missing}.values()) or asked
        return self._refusal(kept, evidence, lacking, language, query, backend or self.backend)

    def _quoted_part(
        self,
        kind: Kind,
        kept: Sequence[CheckedClaim],
        evidence: Sequence[EvidenceItem],
        query: str,
        language: str,
        part: str | None = None,
    ) -> CheckedClaim | None:
        """The best evidence sentence not yet cited that gives `kind` about the subject of
        the question (or of its `part`), as a verbatim quote; None when there is none."""
        cited = {(e.hit.chunk.chunk_id, e.start) for c in kept for e in c.evidence}
        for item in sorted(evidence, key=lambda e: -e.score):
            if (item.hit.chunk.chunk_id, item.start) in cited or is_fragment(item) or item.score < EXTRACTIVE_MIN:
                continue
            claim = CheckedClaim(ALSO_STATED[language].format(quote=in_script(item.text.strip(), language)), [item])
            if self.holds(CheckedClaim(item.text, [item]), kind, query) and self.about_subject(claim, query, part):
                return claim
        return None

    def holds(self, claim: CheckedClaim, kind: Kind, query: str) -> bool:
        """Whether `claim` gives the `kind` of thing asked: in its evidence, and for a date,
        number or contact detail also in what the claim adds to the question."""
        if not kind.held_by(" ".join(e.text for e in claim.evidence)):
            return False
        return not kind.in_claim or kind.held_by(self.kinds.beyond(claim.text, query))

    def answers(self, claim: CheckedClaim, query: str, asked: Sequence[Kind]) -> bool:
        """Whether `claim` is about the question's subject and gives one thing it asks for."""
        wanted = [k for k in asked if k.evidence]
        return self.about_subject(claim, query) and (not wanted or any(self.holds(claim, k, query) for k in wanted))

    def about_subject(self, claim: CheckedClaim, query: str, part: str | None = None) -> bool:
        """Whether the passages of `claim`'s evidence are about what `query` names: under
        the same year or edition when the question names one, not under a borrowed name
        (`borrowed_names`), and holding its subject's words.

        A question of several parts ("该区建置有多少年？它贡献了多少GDP？") is answered part
        by part: a claim about the subject of one part (`part`, or any part of two or more
        content words when None) counts, though it leaves the other part's words out."""
        return not self._elsewhere(claim, query, part) and self._names_subject(claim, query, part)

    def _names_subject(self, claim: CheckedClaim, query: str, part: str | None = None) -> bool:
        """Whether `claim`'s evidence, with what surrounds it, holds enough of the subject
        words of `query` (or of `part`, or of any part when None), weighted by rarity."""
        context = self._context(claim)
        if part is not None:
            candidates = [part]
        else:
            parts = [p for p in self.kinds.parts(query) if len(self.kinds.subject_terms(p)) >= 2]
            candidates = [query, *parts] if len(parts) > 1 else [query]
        text = " ".join(e.text for e in claim.evidence)
        same_script = (han_ratio(query) >= 0.3) == (han_ratio(text) >= 0.3)
        for words in candidates:
            if same_script:
                terms, least = self.kinds.subject_terms(words), SUBJECT_MIN
            else:
                # Another script: the question's words reach the evidence only through the
                # corpus glossary (English phrase → Chinese terms).
                terms, least = self._glossary_terms(words), SUBJECT_MIN_GLOSSARY
            if self._weighted_coverage(terms, context) >= least:
                return True
        return False

    def _elsewhere(self, claim: CheckedClaim, query: str, part: str | None = None) -> str | None:
        """Why `claim`'s evidence is about another subject than the question's (another
        year or edition, another anchor, or the question's names given to something else);
        None when it is not. A year or edition narrows only its own part of a question
        asking several things ("目前建成了几个？与2017年提出的目标相比如何？")."""
        context = self._context(claim)
        dates = " ".join(e.hit.document.published or "" for e in claim.evidence)
        if not any(
            self.kinds.qualified(p, f"{context} {dates}") and self.kinds.anchored(p, context)
            for p in ([part] if part is not None else self.kinds.parts(query))
        ):
            return "about another year, edition or anchor"
        borrowed = self.borrowed_names(claim, query)
        return f"names of the question not in its passages: {', '.join(borrowed)}" if borrowed else None

    @staticmethod
    def _context(claim: CheckedClaim) -> str:
        """The claim's evidence with what surrounds it: the subject is often named a sentence before."""
        return " ".join(
            dict.fromkeys(
                f"{e.hit.document.title} {e.hit.chunk.heading or ''} "
                f"{e.hit.chunk.text[max(0, e.start - SUBJECT_WINDOW) : e.end + SUBJECT_WINDOW]}"
                for e in claim.evidence
            )
        )

    def borrowed_names(self, claim: CheckedClaim, query: str) -> list[str]:
        """Nouns of the question that `claim` repeats but its evidence does not hold: the
        claim states something about another entity under the question's name ("甲省中心由…
        运营" over a sentence about the center of another province) or under another role ("会长是…"
        over "秘书长…"). Common nouns (in more than `BORROWED_MAX_SHARE` of passages) are
        left out. A name is looked for in the evidence's passage and the document text before
        it (`BORROWED_LOOKBACK`: a person or subject is often named once, earlier), unless
        the evidence sentences themselves name another one of its kind (another place for a
        place): then they are about that one. Same script only: an English claim over Chinese
        evidence words names differently."""
        evidence = " ".join(e.text for e in claim.evidence)
        if han_ratio(claim.text) < 0.3 or han_ratio(evidence) < 0.3:
            return []
        said = to_simplified(normalize(claim.text)).replace(" ", "")
        passages = " ".join(
            dict.fromkeys(
                f"{e.hit.document.title} {e.hit.chunk.heading or ''} "
                f"{e.hit.document.text[max(0, e.hit.chunk.start - BORROWED_LOOKBACK) : e.hit.chunk.end]}"
                for e in claim.evidence
            )
        )
        asked = nouns(query)
        rare = max(BORROWED_MAX_SHARE * len(self.retriever.snapshot.tokens), 2)
        candidates = [
            (t, tag) for t, tag in asked.items()
            if t in said and self._document_frequency(t) <= rare and coverage([t], evidence) < 1.0
        ]
        if not candidates:
            return []
        rivals = {tag for t, tag in nouns(evidence).items() if tag in NAME_TAGS and t not in asked}
        return [
            t for t, tag in candidates
            if coverage([t], passages) < 1.0 or (tag in NAME_TAGS and tag in rivals) or self._rival_of_kind(t, query, evidence)
        ]

    def _rival_of_kind(self, term: str, query: str, evidence: str) -> bool:
        """Whether `term` is a thing of a kind the question asks for (a role, "秘书长") and
        the evidence names another of that kind ("部长") instead: the claim gives the
        question's role to that one's holder."""
        for kind in self.kinds.asked(query):
            if kind.evidence and kind.held_by(term):
                others = {m for m in kind.found_in(evidence) if m not in term and term not in m}
                if others:
                    return True
        return False

    def _weighted_coverage(self, terms: Sequence[str], context: str) -> float:
        """Coverage with each term weighted by its rarity in the index (idf): the words that
        name a subject ("南亚", "王志刚") count, the ones every passage has ("中心") hardly."""
        if not terms:
            return 1.0
        n = len(self.retriever.snapshot.tokens)
        weights = {t: math.log((n + 1) / (self._document_frequency(t) + 1)) + 0.05 for t in terms}
        present = sum(w for t, w in weights.items() if coverage([t], context) == 1.0)
        return present / sum(weights.values())

    def _document_frequency(self, term: str) -> int:
        if self._df is None:
            self._df = Counter(t for tokens in self.retriever.snapshot.tokens for t in set(tokens))
        return self._df.get(term, 0)

    def _glossary_terms(self, query: str) -> list[str]:
        if han_ratio(query) >= 0.3:
            return []
        tokens = query_tokens(query, self.retriever.synonyms)
        return [t for t in dict.fromkeys(tokens) if han_ratio(t) >= 0.5 and len(t) >= 2]

    def _refusal(
        self,
        kept: list[CheckedClaim],
        evidence: list[EvidenceItem],
        asked: Sequence[Kind],
        language: str,
        query: str,
        backend: str,
    ) -> Answer:
        label = asked[0].label(language) if asked else ANY_ANSWER[language]
        text = NOT_STATED[language].format(label=label)
        # The closest facts, only when they are about what the question names.
        related = [c for c in kept if not self.kinds.states_absence(c.text) and self.about_subject(c, query)][:2]
        if not related and evidence:
            best = max(evidence, key=lambda e: e.score)
            quoted = CheckedClaim(f"“{in_script(best.text.strip(), language)}”", [best])
            related = [quoted] if self.about_subject(quoted, query) else []
        sentences, citations = _cited(related)
        if len(sentences) == 1:
            text += (" " if language == "en" else "") + CLOSEST[language] + " " + render(sentences)
        elif sentences:
            text += (" " if language == "en" else "") + CLOSEST[language] + "\n" + "\n".join(f"- {render([s])}" for s in sentences)
        return Answer(
            answer=text, citations=[], grounded=False, backend=backend, query=query, related=citations
        )

    def _in_language(self, text: str, language: str) -> str:
        if language != "en" and han_ratio(text) >= 0.3 and not _CLOSED.search(text):
            text += "。"  # claims run together read as one sentence otherwise
        if language == "en":
            return _english_terms(text, self.names)
        if language == "zh-Hant":
            return to_traditional(text)
        if language == "zh-Hans" and han_ratio(text) > 0.3:
            return to_simplified(text)
        return text

    # ---------------------------------------------------------------- no model

    def _extractive(
        self, query: str, evidence: list[EvidenceItem], asked: list[Kind], language: str
    ) -> Answer:
        """The best evidence sentences, verbatim, under the same answerability rule."""
        ranked = sorted(evidence, key=lambda e: -e.score)
        claims = [CheckedClaim(e.text.strip(), [e]) for e in ranked if e.score >= EXTRACTIVE_MIN and not is_fragment(e)]
        # Only sentences holding what was asked, when there are any; otherwise they are
        # the closest things the documents state.
        answering = [c for c in claims if self.answers(c, query, asked)]
        claims = (answering or claims)[:3]
        return self._decide(
            claims, None, query, evidence, asked, language,
            backend="extractive", intro=EXTRACTIVE_INTRO[language],
        )

    def _not_covered(self, language: str, query: str) -> Answer:
        return Answer(NOT_COVERED[language], [], False, self.backend, query=query)

    @staticmethod
    def _emit(answer: Answer) -> Iterator[Event]:
        yield TokenEvent(answer.answer)
        yield DoneEvent(answer)


def _cited(claims: Sequence[CheckedClaim]) -> tuple[list[CitedSentence], list[Citation]]:
    """Claims as cited sentences, numbered in order of first use."""
    sentences = []
    for claim in claims:
        citations = [
            c
            for e in claim.evidence
            if (c := verify_quote(e.hit.document, e.hit.chunk, e.start, e.end)) is not None
        ]
        if citations:
            sentences.append(CitedSentence(claim.text, citations))
    result = _renumber(sentences, [])
    return result.sentences, result.citations


def estimate_tokens(text: str) -> int:
    """Tokens of `text` without a tokenizer: about one per Chinese character."""
    return (len(text.encode("utf-8")) + 2) // 3


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
