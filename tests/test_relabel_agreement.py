"""The relabel measurement (scripts/relabel_agreement.py) on a small set built here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from probe.classify.corpus import Example

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "relabel_agreement.py"


def load_script():
    spec = importlib.util.spec_from_file_location("relabel_agreement", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dev_rows() -> list[Example]:
    rows = []
    for i in range(40):
        source = "a/big" if i < 30 else "b/small"
        label = ["refusal", "answer", "deflection", "answer"][i % 4]
        rows.append(Example(prompt="p", response="r", label=label, source=source, id=f"r{i}"))
    return rows


def test_draw_is_stratified_reproducible_and_excludes(monkeypatch):
    module = load_script()
    monkeypatch.setattr(module, "QUOTA", {"a/big": 5, "b/small": 3})
    first = module.draw(dev_rows(), 7, set())
    assert [row["id"] for row in first] == [row["id"] for row in module.draw(dev_rows(), 7, set())]
    assert sum(row["id"] in {f"r{i}" for i in range(30)} for row in first) == 5
    assert set(first[0]) == {"id", "prompt", "response"}  # blind: no label, no source
    again = module.draw(dev_rows(), 8, {row["id"] for row in first})
    assert not {row["id"] for row in again} & {row["id"] for row in first}


def test_score_weights_sources_by_set_size_and_reports_two_labellers():
    module = load_script()
    dev = dev_rows()
    # Relabel agrees with the set on all 4 rows of a/big, on 1 of 2 rows of b/small.
    labels = [{"id": f"r{i}", "pass": 1, "label": dev[i].label} for i in range(4)]
    labels += [
        {"id": "r30", "pass": 1, "label": "deflection"},
        {"id": "r31", "pass": 1, "label": "refusal"},
    ]
    labels += [
        {"id": "r0", "pass": 2, "label": "refusal"},
        {"id": "r1", "pass": 2, "label": "refusal"},
    ]
    predictions = [{"id": row.id, "predicted": "answer"} for row in dev]
    table = module.score(dev, labels, predictions)
    assert "| a/big | 4 | 1.000" in table
    assert "| b/small | 2 | 0.500" in table
    # weighted: (1.0 * 30 + 0.5 * 10) / 40
    assert "| weighted to the set's source sizes | | 0.875 |" in table
    assert "two labellers on the same 2 rows: accuracy 0.500" in table
