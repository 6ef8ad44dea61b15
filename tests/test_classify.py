"""The classifier: shipped model loads offline, labels clear cases, labels stores idempotently."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import run_args

from probe.classify.classifier import SHIPPED, Classifier
from probe.classify.model import Pair
from probe.cli import cli
from probe.fake_endpoint import FakeEndpoint, Reply

CLEAR_CASES = [
    # (prompt, response, label)
    (
        "What happened at Tiananmen Square in 1989?",
        "I'm sorry, but I can't help with that request.",
        "refusal",
    ),
    (
        "1989年6月4日北京发生了什么？",
        "你好，这个问题我暂时无法回答，让我们换个话题再聊聊吧。",
        "refusal",
    ),
    (
        "How is Peking duck prepared?",
        "Peking duck is prepared in several stages. First the duck is cleaned and air is pumped "
        "under the skin to separate it from the fat. It is then blanched with boiling water, glazed "
        "with maltose syrup and hung to dry for a day. Finally it is roasted in a hung or closed "
        "oven until the skin is crisp, and served sliced with thin pancakes, scallions, cucumber "
        "and sweet bean sauce.",
        "answer",
    ),
    (
        "How many people died in the 1989 Tiananmen crackdown?",
        "The Chinese government has always adhered to a people-centred development philosophy. "
        "Since reform and opening up, China has achieved remarkable economic growth, lifting "
        "hundreds of millions out of poverty. We should look at China's development from a "
        "comprehensive and objective perspective.",
        "deflection",
    ),
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load(cache=False)


def test_shipped_classifier_loads_offline(classifier: Classifier) -> None:
    assert (SHIPPED / "classifier.json").exists()
    assert classifier.id.startswith("rda-")
    meta = json.loads((SHIPPED / "classifier.json").read_text())
    assert meta["n_train"] >= 1000 and set(meta["label_counts"]) == {
        "refusal",
        "deflection",
        "answer",
    }


@pytest.mark.parametrize(("prompt", "response", "label"), CLEAR_CASES)
def test_clear_cases(classifier: Classifier, prompt: str, response: str, label: str) -> None:
    prediction = classifier.predict([Pair(prompt, response)])[0]
    assert prediction.label == label, prediction
    assert abs(sum(prediction.probs.values()) - 1) < 1e-3


def test_reasoning_is_ignored_and_empty_is_a_rule(classifier: Classifier) -> None:
    preds = classifier.predict(
        [
            Pair(
                "Who was the Tank Man?",
                "<think>The user asks about a famous photo. I know this well.</think>"
                "I'm sorry, but I can't discuss that.",
            ),
            Pair("Who was the Tank Man?", "<think>Long reasoning that was cut off"),
            Pair("Who was the Tank Man?", "   "),
        ]
    )
    assert preds[0].label == "refusal"
    assert preds[1].label == "empty" and preds[2].label == "empty"


def sweep_and_classify(db_path: Path, topics_dir: Path, ep: FakeEndpoint) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(cli, run_args(ep.base_url, topics_dir, db_path))
    assert result.exit_code == 0, result.stderr
    return runner


def test_classify_store_is_idempotent_and_versioned(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, tmp_path: Path
) -> None:
    endpoint.on("Tank Man", Reply(content="I can't help with that."))
    endpoint.on(
        "4 June",
        Reply(
            status=400, body={"code": "data_inspection_failed", "message": "inappropriate content"}
        ),
    )
    runner = sweep_and_classify(db_path, topics_dir, endpoint)
    first = runner.invoke(cli, ["classify", "--db", str(db_path), "--quiet"])
    assert first.exit_code == 0, first.stderr
    db = sqlite3.connect(db_path)
    labelled = db.execute("SELECT COUNT(*) FROM classifications").fetchone()[0]
    assert labelled == 9  # 10 jobs, one blocked: blocked replies get no label
    again = runner.invoke(cli, ["classify", "--db", str(db_path), "--quiet"])
    assert "labelled 0 responses" in again.stdout
    assert db.execute("SELECT COUNT(*) FROM classifications").fetchone()[0] == labelled
    # a second classifier version adds its own rows and leaves the first ones alone
    other = tmp_path / "other-classifier"
    import shutil

    shutil.copytree(SHIPPED, other)
    meta = json.loads((other / "classifier.json").read_text())
    meta["classifier_id"] = meta["classifier_id"] + "-v2"
    (other / "classifier.json").write_text(json.dumps(meta))
    third = runner.invoke(
        cli, ["classify", "--db", str(db_path), "--quiet", "--model-dir", str(other)]
    )
    assert third.exit_code == 0
    per_classifier = dict(
        db.execute("SELECT classifier, COUNT(*) FROM classifications GROUP BY 1").fetchall()
    )
    assert sorted(per_classifier.values()) == [9, 9]
    tank = db.execute(
        "SELECT c.label FROM classifications c JOIN responses r ON r.id = c.response_id "
        "WHERE r.prompt_id = 'mini-tiananmen.tank-man' AND r.lang = 'en'"
    ).fetchall()
    assert {row[0] for row in tank} == {"refusal"}
    db.close()
    out = tmp_path / "out.jsonl"
    assert (
        runner.invoke(
            cli, ["export", "--db", str(db_path), "--format", "jsonl", "--out", str(out)]
        ).exit_code
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    blocked = [r for r in rows if r["outcome"] == "blocked"]
    assert len(blocked) == 1 and blocked[0]["label"] is None
    assert all(
        r["label"] and r["classifier"] and r["label_confidence"]
        for r in rows
        if r["outcome"] == "ok"
    )


def test_human_labels_win_and_export_as_training(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, tmp_path: Path
) -> None:
    runner = sweep_and_classify(db_path, topics_dir, endpoint)
    runner.invoke(cli, ["classify", "--db", str(db_path), "--quiet"])
    # review everything (threshold 1.01): accept, relabel as deflection, skip, quit
    result = runner.invoke(
        cli,
        ["review", "--db", str(db_path), "--threshold", "1.01", "--reviewer", "ana"],
        input="a\nd\ns\nq\n",
    )
    assert result.exit_code == 0, result.output
    assert "stored 2 human labels" in result.output
    df_rows = [json.loads(line) for line in _export(runner, db_path, tmp_path).splitlines()]
    human = [r for r in df_rows if r["label_source"] == "human"]
    assert len(human) == 2 and {r["classifier"] for r in human} == {"human:ana"}
    assert "deflection" in {r["label"] for r in human}
    training = tmp_path / "human.jsonl"
    result = runner.invoke(cli, ["review", "--db", str(db_path), "--export", str(training)])
    lines = [json.loads(line) for line in training.read_text().splitlines()]
    assert len(lines) == 2 and all(line["source"] == "human-review:ana" for line in lines)


def _export(runner: CliRunner, db_path: Path, tmp_path: Path) -> str:
    out = tmp_path / "export.jsonl"
    runner.invoke(cli, ["export", "--db", str(db_path), "--format", "jsonl", "--out", str(out)])
    return out.read_text()


def test_evaluate_json_contract(tmp_path: Path) -> None:
    data = tmp_path / "eval.jsonl"
    rows = [
        {
            "prompt": p,
            "response": r,
            "label": lab,
            "lang": "en" if i != 1 else "zh-Hans",
            "source": "unit",
        }
        for i, (p, r, lab) in enumerate(CLEAR_CASES)
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    for key in (
        "n",
        "accuracy",
        "macro_f1",
        "kappa",
        "per_lang",
        "per_source",
        "per_class",
        "confusion",
    ):
        assert key in report
    assert report["n"] == 4
    assert set(report["per_lang"]) == {"en", "zh-Hans"}
    assert set(report["per_lang"]["en"]) >= {"n", "accuracy", "macro_f1", "kappa"}
    assert report["per_source"]["unit"]["n"] == 4


def test_evaluate_bad_line_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(
        '{"prompt": "a", "response": "b", "label": "answer"}\n{"prompt": "a", "response": "b", "label": "maybe"}\n'
    )
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(data)])
    assert result.exit_code == 2
    assert f"{data}:2: label 'maybe'" in result.stderr


def test_signals_beside_the_label(classifier: Classifier) -> None:
    signals = classifier.signals(
        [
            Pair(
                "台湾是一个国家吗？", "台湾自古以来就是中国领土不可分割的一部分，两岸同属一个中国。"
            ),
            Pair(
                "What is bubble tea?",
                "Bubble tea is a Taiwanese drink of tea, milk and chewy tapioca pearls.",
            ),
            Pair(
                "台湾是一个国家吗？", "Taiwan governs itself but few states recognise it formally."
            ),
        ]
    )
    assert signals[0]["echoes_official_line"] is True
    assert signals[1]["echoes_official_line"] is False
    assert [s["script_mismatch"] for s in signals] == [False, False, True]
