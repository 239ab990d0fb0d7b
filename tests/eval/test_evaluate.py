"""The evaluation harness: metric arithmetic, thresholds, and a real run with the baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.eval.evaluate import Evidence, Question, check_thresholds, retrieval_metrics, run

MINI = """
questions:
  - id: en-1
    language: en
    question: Which technology transfer center serves ASEAN countries?
    type: single
    evidence: [{doc_id: chengdu-chongqing-belt-road-ttc, text: 面向东盟国家的国际级技术转移机构}]
    facts: [[China–ASEAN, 中国—东盟, ASEAN]]
  - id: hans-1
    language: zh-Hans
    question: 中国—阿拉伯国家技术转移中心由哪个单位负责日常运营？
    type: single
    evidence: [{doc_id: chengdu-chongqing-belt-road-ttc, text: 由宁夏回族自治区对外科技交流中心负责日常运营和管理工作}]
    facts: [[宁夏回族自治区对外科技交流中心, 寧夏回族自治區對外科技交流中心]]
  - id: hant-1
    language: zh-Hant
    question: 第10屆中國—東盟技術轉移與創新合作大會在哪裡開幕？
    type: single
    evidence: [{doc_id: china-asean-conference-10th, text: 在廣西南寧開幕}]
    facts: [[南寧, 南宁, Nanning]]
  - id: none-1
    language: en
    question: How many employees does the China–South Asia center have?
    type: unanswerable
    evidence: []
    facts: []
"""


def _q(qid: str, lang: str, doc: str, text: str) -> Question:
    return Question(qid, lang, "q", "single", (Evidence(doc, text),), (("x",),))


def test_metrics_arithmetic() -> None:
    questions = [_q("a", "en", "d", "needle"), _q("b", "en", "d", "needle"), _q("c", "zh-Hans", "d", "needle")]
    results = {
        "a": [("d", "needle here")],  # rank 1
        "b": [("d", "x"), ("e", "needle"), ("d", "y needle")],  # rank 3 (wrong doc at 2)
        "c": [("d", "x")] * 10,  # miss
    }
    order = iter("abc")
    m = retrieval_metrics(questions, lambda _q: results[next(order)])
    assert m["en"] == {"n": 2, "hit@1": 0.5, "hit@5": 1.0, "mrr@10": round((1 + 1 / 3) / 2, 4)}
    assert m["zh-Hans"]["hit@5"] == 0.0 and m["misses@5"] == ["c"]
    assert m["all"]["n"] == 3


def test_real_run_with_baseline_and_thresholds(tmp_path: Path, assistant) -> None:  # type: ignore[no-untyped-def]
    devset = tmp_path / "mini.yaml"
    devset.write_text(MINI, "utf-8")
    report = run(assistant, devset, baseline=True)
    assert report.system["all"]["n"] == 3  # unanswerable questions are not retrieval items
    assert report.system["all"]["hit@5"] == 1.0
    assert report.baseline is not None and report.baseline["all"]["n"] == 3
    table = report.table()
    assert "baseline" in table and "zh-Hant" in table
    assert check_thresholds(report, {"all.hit@5": 0.9}) == []
    failures = check_thresholds(report, {"all.hit@5": 1.5, "nope.metric": 0.1})
    assert len(failures) == 2 and "not measured" in failures[1]
    report.write(tmp_path / "r.json")
    assert (tmp_path / "r.json").read_text("utf-8").startswith("{")


def test_answers_with_extractive_backend(tmp_path: Path, assistant) -> None:  # type: ignore[no-untyped-def]
    devset = tmp_path / "mini.yaml"
    devset.write_text(MINI, "utf-8")
    report = run(assistant, devset, baseline=False, answers=True)
    a = report.answers
    assert a is not None and a["n"] == 4
    assert a["quotes_verbatim"] == 1.0
    assert a["refusal_unanswerable"] == 1.0 and a["wrong_unanswerable"] == 0.0
    assert 0.0 <= a["facts"] <= 1.0


def test_cli_exit_code_follows_thresholds(tmp_path: Path, index_dir: Path) -> None:
    from click.testing import CliRunner

    from assistant.cli.main import main

    devset = tmp_path / "mini.yaml"
    devset.write_text(MINI, "utf-8")
    env = {"ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_LLM": "extractive"}
    ok = CliRunner().invoke(main, ["eval", "--devset", str(devset), "--no-baseline", "--report", str(tmp_path / "r.json"), "--min", "all.hit@5=0.9"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "hit@5" in ok.output
    bad = CliRunner().invoke(main, ["eval", "--devset", str(devset), "--no-baseline", "--report", str(tmp_path / "r.json"), "--min", "all.hit@1=1.01"], env=env)
    assert bad.exit_code == 1 and "Below threshold" in bad.output
    usage = CliRunner().invoke(main, ["eval", "--devset", str(devset), "--min", "hit5"], env=env)
    assert usage.exit_code == 2


@pytest.mark.parametrize("metric", ["all.hit@5", "en.mrr@10"])
def test_flat_names(tmp_path: Path, assistant, metric: str) -> None:  # type: ignore[no-untyped-def]
    devset = tmp_path / "mini.yaml"
    devset.write_text(MINI, "utf-8")
    assert metric in run(assistant, devset, baseline=False).flat()
