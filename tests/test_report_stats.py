"""The statistics behind every published rate and gap, checked against known values and
against scipy, and the fast paths checked against the slow ones they replace."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from probe.classify.text import dominant_script
from probe.report import tables
from probe.report.signals import script_of_reply
from probe.report.stats import (
    benjamini_hochberg,
    cohens_h,
    compare,
    compare_many,
    holm,
    wilson,
    wilson_arrays,
)


def test_wilson_known_values() -> None:
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0, 0))
    lo, hi = wilson_arrays(np.array([5, 0, 81, 0]), np.array([10, 10, 263, 0]))
    assert lo[:3] == pytest.approx([0.2366, 0.0, 0.2553], abs=1e-4)
    assert hi[:3] == pytest.approx([0.7634, 0.2775, 0.3662], abs=1e-4)
    assert math.isnan(lo[3]) and math.isnan(hi[3])


def test_holm_and_bh_known_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(3)
    many = rng.uniform(0, 0.2, 200)
    assert benjamini_hochberg(many) == pytest.approx(sps.false_discovery_control(many))
    with_nan = holm([0.01, float("nan"), 0.02])
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1])


def test_compare_uses_fisher_for_small_counts_and_chi2_otherwise() -> None:
    tea = compare(3, 4, 1, 4)
    assert tea.test == "fisher" and tea.p == pytest.approx(0.4857, abs=1e-4)
    big = compare(60, 100, 40, 100)
    expected = sps.chi2_contingency(np.array([[60, 40], [40, 60]]), correction=True).pvalue
    assert big.test == "chi2" and big.p == pytest.approx(expected)
    assert big.diff == pytest.approx(0.2) and big.odds_ratio == pytest.approx(2.25)
    assert compare(0, 0, 3, 5).test == "none"
    assert compare(5, 5, 7, 7).test == "none"  # nothing to test: both all refusals
    assert cohens_h(0.5, 0.25) == pytest.approx(0.5236, abs=1e-4)


def test_vectorised_compare_matches_scalar() -> None:
    rng = random.Random(5)
    rows = [
        (rng.randint(0, n1), n1, rng.randint(0, n2), n2)
        for n1, n2 in ((rng.randint(0, 40), rng.randint(0, 40)) for _ in range(400))
    ]
    got = compare_many(*(np.array(col) for col in zip(*rows, strict=True)))
    for i, row in enumerate(rows):
        one = compare(*row)
        assert got["test"][i] == one.test
        for key, value in (
            ("p", one.p),
            ("diff", one.diff),
            ("cohens_h", one.h),
            ("odds_ratio", one.odds_ratio),
        ):
            assert (math.isnan(value) and math.isnan(got[key][i])) or got[key][i] == pytest.approx(
                value
            ), (row, key)


def test_fast_script_detection_equals_dominant_script() -> None:
    pools = [
        "中文字政府报告",
        "ひらがなカター",
        "한국어정부",
        "Русскийё",
        "عربيةً،",
        "abcéñ",
        " ,.!?。，…・12",
    ]
    rng = random.Random(11)
    for _ in range(3000):
        main, other = rng.choice(pools), rng.choice(pools)
        share = rng.random()
        text = "".join(
            rng.choice(main if rng.random() < share else other) for _ in range(rng.randint(0, 450))
        )
        assert script_of_reply(text) == dominant_script(text[:400]), text


def test_outcomes_never_enter_rates() -> None:
    df = pd.DataFrame(
        {
            "model": ["m"] * 6,
            "topic_id": ["t"] * 6,
            "lang": ["en"] * 6,
            "kind": ["factual"] * 6,
            "topic_title": ["T"] * 6,
            "outcome": ["ok", "ok", "ok", "blocked", "error", "ok"],
            "label": ["refusal", "answer", "answer", None, None, "empty"],
        }
    )
    counts = tables.count_table(tables.prepare(df), ["model"]).iloc[0]
    assert (counts["n"], counts["blocked"], counts["error"], counts["empty"]) == (3, 1, 1, 1)
    assert counts["refusal_rate"] == pytest.approx(1 / 3)
    assert counts["blocked_rate"] == pytest.approx(1 / 5)  # of requests that got through
