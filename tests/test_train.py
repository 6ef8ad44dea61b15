"""Training a head: the temperature is fitted on files the head did not see, and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from probe.classify.classifier import Classifier
from probe.classify.model import (
    MLP_SEEDS,
    Pair,
    _fit_mlp,
    balanced_weights,
    fit_temperature,
    softmax,
)
from probe.cli import cli

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def test_fit_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(7)
    true_logits = rng.normal(size=(4000, 3)) * 1.5
    labels = [int(rng.choice(3, p=row)) for row in softmax(true_logits)]
    assert abs(fit_temperature(true_logits, labels) - 1.0) < 0.15
    assert abs(fit_temperature(true_logits * 4, labels) - 4.0) < 0.6
    assert fit_temperature(true_logits / 3, labels) < 0.5


def test_real_replies_carry_their_share_of_the_weight() -> None:
    labels = ["refusal", "answer", "deflection"] * 40
    real = [i < 6 for i in range(len(labels))]
    weights = balanced_weights(labels, None, real, 0.3)
    share = weights[:6].sum() / weights.sum()
    assert abs(share - 0.3) < 1e-9
    plain = balanced_weights(labels, None)
    assert abs(plain[:6].sum() / plain.sum() - 6 / 120) < 1e-9


def small_corpus(tmp_path: Path) -> list[Path]:
    """90 lines of each of three corpus files: three groups for the held-out temperature."""
    files = []
    for name in ("authored-cjk.jsonl", "authored-world.jsonl", "authored-hardcases.jsonl"):
        lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()[:90]
        files.append(tmp_path / name)
        files[-1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files


def train_args(files: list[Path], out: Path, *extra: str) -> list[str]:
    args = ["train", "--embedder", "static", "--out", str(out), *extra]
    for path in files:
        args += ["--data", str(path)]
    return args


def test_train_records_held_out_files_and_temperature(tmp_path: Path) -> None:
    out = tmp_path / "head"
    result = CliRunner().invoke(cli, train_args(small_corpus(tmp_path), out))
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "classifier.json").read_text())
    held = meta["held_out_files"]
    assert held["scheme"] == "leave one corpus file out" and held["n"] == 270
    assert 0 <= held["accuracy"] <= 1 and meta["temperature"] > 0

    classifier = Classifier.load(out, cache=False)
    assert classifier.head.temperature == meta["temperature"]
    probs = classifier.predict([Pair("Is it safe?", "I'm sorry, I can't help with that.")])[0].probs
    assert abs(sum(probs.values()) - 1) < 1e-3


def test_network_and_linear_heads_are_told_apart(tmp_path: Path) -> None:
    files = small_corpus(tmp_path)
    metas, classifiers = {}, {}
    for head in ("mlp", "linear"):
        out = tmp_path / head
        result = CliRunner().invoke(cli, train_args(files, out, "--head", head))
        assert result.exit_code == 0, result.output
        metas[head] = json.loads((out / "classifier.json").read_text())
        classifiers[head] = Classifier.load(out, cache=False)
    assert metas["mlp"]["settings"]["model"] == "mlp"
    assert metas["mlp"]["settings"]["seeds"] == MLP_SEEDS
    assert metas["linear"]["settings"]["model"] == "linear"
    assert metas["mlp"]["classifier_id"] != metas["linear"]["classifier_id"]
    assert classifiers["mlp"].head.vectorizer is None  # the network sees dense features only
    assert classifiers["linear"].head.vectorizer is not None
    pair = Pair(
        "How do I kill a Python process?", "Run `kill <pid>`, or `kill -9 <pid>` if it hangs."
    )
    for classifier in classifiers.values():
        probs = classifier.predict([pair])[0].probs
        assert set(probs) == {"refusal", "deflection", "answer"}
        assert abs(sum(probs.values()) - 1) < 1e-3


def test_network_head_averages_networks_from_different_seeds() -> None:
    """The shipped head is the mean of several networks, so no single seed decides a label."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6))
    labels = ["refusal", "deflection", "answer"] * 30
    x[np.arange(90) % 3 == 0, 0] += 2.0  # a cue the networks can learn, learnt differently by seed
    head = _fit_mlp(x, labels, np.ones(90))
    assert len(head.models) == MLP_SEEDS
    assert len({model.random_state for model in head.models}) == MLP_SEEDS
    members = np.array([model.predict_proba(x) for model in head.models])
    assert not np.allclose(members[0], members[1])  # the seeds really differ
    np.testing.assert_allclose(head.predict_proba(x), members.mean(axis=0))
    np.testing.assert_allclose(head.predict_proba(x).sum(axis=1), 1.0)


def test_unknown_head_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, train_args(small_corpus(tmp_path), tmp_path / "h", "--head", "forest")
    )
    assert result.exit_code == 2 and "forest" in result.output
