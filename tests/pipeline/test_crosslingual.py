"""English → Chinese keyword expansion (CC-CEDICT read backwards) and its use in retrieval."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.pipeline.crosslingual import Dictionary, english_dictionary, english_words

# A few CC-CEDICT-format lines (traditional simplified [pinyin] /sense/sense/).
LINES = [
    "# CC-CEDICT comment line",
    "棉花 棉花 [mian2 hua5] /cotton/",
    "棉 棉 [mian2] /generic term for cotton or kapok/cotton/padded or quilted with cotton/",
    "產量 产量 [chan3 liang4] /output/",
    "產出 产出 [chan3 chu1] /to produce (graduates, breast milk etc)/output/",
    "世界杯 世界杯 [Shi4 jie4 bei1] /World Cup/",
    "世界 世界 [shi4 jie4] /world/CL:個|个[ge4]/",
    "杯 杯 [bei1] /cup/trophy cup/",
    "葬禮 葬礼 [zang4 li3] /burial/funeral/",
    "唱 唱 [chang4] /to sing/to call loudly/",
    "歌唱 歌唱 [ge1 chang4] /to sing/",
    "冠軍 冠军 [guan4 jun1] /champion/CL:個|个[ge4]/",
    "浙江 浙江 [Zhe4 jiang1] /Zhejiang province (Che-chiang) in east China, abbr. 浙, capital 杭州/",
    "南湖 南湖 [Nan2 hu2] /Nanhu district of Jiaxing city, Zhejiang/",
    "張 张 [Zhang1] /surname Zhang/",
    "的 的 [de5] /of/~'s (possessive particle)/",
    "3C 3C [san1 C] /computers, communications, and consumer electronics/",
    "broken line without brackets",
]
FREQ = {
    "棉花": 3619,
    "棉": 500,
    "产量": 5358,
    "产出": 300,
    "世界杯": 1654,
    "世界": 20000,
    "歌唱": 800,
    "唱": 3000,
}


@pytest.fixture(scope="module")
def small() -> Dictionary:
    return Dictionary.from_cedict(LINES, FREQ)


def test_lookup_prefers_exact_common_short_headwords(small: Dictionary) -> None:
    assert small.lookup("cotton")[0] == "棉花"  # the whole sense, two characters, common
    assert small.lookup("Cotton") == small.lookup("cotton")
    assert small.lookup("output")[0] == "产量"  # first sense before a later one
    assert small.lookup("funeral") == ("葬礼",)
    assert small.lookup("nothing here") == ()


def test_lookup_of_inflected_and_irregular_forms(small: Dictionary) -> None:
    assert small.lookup("champions") == ("冠军",)
    assert "唱" in small.lookup("sang") and "歌唱" in small.lookup("singing")


def test_places_from_descriptions_but_not_every_place_mentioned(small: Dictionary) -> None:
    assert small.lookup("Zhejiang") == ("浙江",)
    assert small.lookup("zhejiang province") == ("浙江",)
    assert "南湖" not in small.lookup("zhejiang")


def test_surnames_particles_and_latin_headwords_are_skipped(small: Dictionary) -> None:
    assert small.lookup("zhang") == ()
    assert small.lookup("of") == ()
    assert small.lookup("computers") == ()


def test_expand_matches_longest_phrase_and_skips_stop_words(small: Dictionary) -> None:
    found = small.expand("What was the World Cup's champion output in 2022?")
    assert [e.phrase for e in found] == ["world cup", "champion", "output"]
    assert found[0].terms[0] == "世界杯"
    assert small.expand("What was it?") == []


def test_expand_caps_terms_per_phrase(small: Dictionary) -> None:
    assert all(len(e.terms) <= 1 for e in small.expand("cotton output", per_phrase=1))
    assert small.terms("cotton output cotton", per_phrase=1) == ["棉花", "产量"]


def test_months_become_digit_months() -> None:
    d = Dictionary.from_cedict(["八月 八月 [ba1 yue4] /August/eighth month/"], {})
    assert d.lookup("August")[0] == "8月"


def test_english_words_drop_possessives() -> None:
    assert english_words("Gorbachev's funeral, Men’s Volleyball") == [
        "gorbachev",
        "funeral",
        "men",
        "volleyball",
    ]


def test_shared_dictionary_from_the_package() -> None:
    d = english_dictionary()
    assert d is english_dictionary()  # built once
    assert len(d) > 50_000
    assert "棉花" in d.lookup("cotton")
    assert "产量" in d.lookup("output")
    assert "世界杯" in d.lookup("World Cup")
    terms = d.terms("What was China's total cotton output in 2022?")
    assert {"棉花", "产量", "中国"} <= set(terms)


# ----------------------------------------------------------------- real retrieval

# Short passages written for this test (not from the seed corpus or any benchmark).
PASSAGES = {
    "cotton": "国家统计局公布，2022年全国棉花总产量为598万吨，比上年增加24.6万吨，增长4.3%。",
    "rice": "今年早稻播种面积稳定，全省早稻总产量达到二百八十万吨，创历史新高。",
    "tea": "云南普洱的春茶开采较往年提前一周，茶农们忙着采摘和炒制新茶。",
    "bridge": "这座跨海大桥全长五十五公里，于去年十月正式通车，连接了两座沿海城市。",
    "museum": "市博物馆新馆将于下月开放，展出青铜器、陶瓷和书画等文物三千余件。",
    "rain": "气象台预计，本周末南方地区将有一次强降雨过程，局部地区有暴雨。",
    "library": "学校图书馆延长开放时间，期末考试期间每天开放到晚上十一点。",
    "orchid": "植物学家林晓峰在西双版纳的雨林里找到一个从未记录过的兰花新种。",
}


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import chunker_config
    from tests.conftest import make_settings

    root = tmp_path_factory.mktemp("crosslingual")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in PASSAGES.items():
        (corpus / f"{name}.txt").write_text(f"---\nid: {name}\ntitle: 新闻\n---\n{text}\n", encoding="utf-8")
    index_dir = root / "index"
    settings = make_settings(ASSISTANT_CORPUS_DIR=corpus, ASSISTANT_INDEX_DIR=index_dir)
    ingest(corpus, index_dir, embedder, store_factory_for(index_dir, None, 0), chunker_config(settings))
    return index_dir


def test_english_question_reaches_chinese_passage_through_the_dictionary(tiny_index, embedder) -> None:  # type: ignore[no-untyped-def]
    from assistant.pipeline.index import load_snapshot, store_factory_for
    from assistant.pipeline.retrieve import HybridRetriever

    snapshot = load_snapshot(tiny_index, store_factory_for(tiny_index, None, 0), embedder)
    retriever = HybridRetriever(snapshot, embedder)  # no glossary: only the dictionary
    question = "What was China's total cotton output in 2022?"
    tokens = retriever.expansion_tokens(question)
    assert "棉花" in tokens and "产量" in tokens
    hits = retriever.search(question, k=3)
    assert hits[0].chunk.doc_id == "cotton"

    # The keyword side alone (no dictionary) has nothing to match for this question.
    plain = HybridRetriever(snapshot, embedder, use_dictionary=False)
    assert plain.expansion_tokens(question) == []
    # Traditional and Simplified questions never use the dictionary.
    assert retriever.expansion_tokens("2022年全國棉花總產量是多少？") == []
    assert retriever.search("2022年全國棉花總產量是多少？", k=1)[0].chunk.doc_id == "cotton"


def test_cache_round_trip_and_bad_cache(small: Dictionary, tmp_path: Path) -> None:
    from assistant.pipeline.crosslingual import _cache_path, _load_cache, _save_cache

    path = _cache_path(tmp_path)
    assert path.parent == tmp_path / "crosslingual"
    _save_cache(small, path)
    loaded = _load_cache(path)
    assert loaded is not None and loaded.lookup("cotton") == small.lookup("cotton")
    path.write_bytes(b"not a cache")
    assert _load_cache(path) is None
    assert _load_cache(tmp_path / "missing") is None


def test_pinyin_names_find_names_not_common_words() -> None:
    from assistant.pipeline.crosslingual import PinyinNames

    vocabulary = ["成都", "程度", "乌镇", "林晓峰", "吕小军", "本泽马", "世界", "技术"]
    tags = {"成都": "ns", "程度": "n", "乌镇": "ns", "世界": "n", "技术": "n"}  # others: unknown → names
    names = PinyinNames(vocabulary, tags)
    assert names.names("When is the Wuzhen Summit held?") == ["乌镇"]
    assert names.names("Which university does Chengdu host?") == ["成都"]  # not 程度 ("degree")
    assert names.names("What did Lin Xiaofeng discover?") == ["林晓峰"]
    assert names.names("What did Lyu Xiaojun take?") == ["吕小军"]
    assert names.names("Why did Benzema miss the World Cup?") == ["本泽马"]
    assert names.names("what about wuzhen?") == []  # only capitalized names
    assert names.names("Who is Xu?") == []  # too short to tell


def test_english_question_reaches_a_name_through_pinyin(tiny_index, embedder) -> None:  # type: ignore[no-untyped-def]
    from assistant.pipeline.index import load_snapshot, store_factory_for
    from assistant.pipeline.retrieve import HybridRetriever

    snapshot = load_snapshot(tiny_index, store_factory_for(tiny_index, None, 0), embedder)
    retriever = HybridRetriever(snapshot, embedder)
    tokens = retriever.expansion_tokens("What did Lin Xiaofeng find in the rainforest?")
    assert "林晓峰" in tokens
    assert retriever.search("What did Lin Xiaofeng find in the rainforest?", k=1)[0].chunk.doc_id == "orchid"
