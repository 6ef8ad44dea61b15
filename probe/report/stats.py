"""The statistics behind every number in a report: intervals, tests, corrections, effect sizes.

Small, pure functions with known values (see tests/test_report.py), so a reader can check how a
figure was computed without trusting a library they cannot see. Rates are shares of labelled
replies; blocked, error and empty replies never enter a denominator here (the caller decides).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials.

    Chosen over the normal ("Wald") interval because it stays inside [0, 1] and keeps its
    coverage for small n and rates near 0 or 1, which is exactly where refusal rates live.
    Returns (nan, nan) when n is 0: no data is not a rate of zero.
    """
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def wilson_arrays(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised `wilson` for whole tables at once (one call per column, not per cell)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, np.nan)
        z2 = z * z
        denom = 1 + z2 / n
        centre = (p + z2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lo, hi


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (controls the family-wise error rate).

    NaN p-values (untestable comparisons) stay NaN and do not count towards the family size.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m == 0:
        return out.tolist()
    order = idx[np.argsort(p[idx], kind="mergesort")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out.tolist()


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate).

    The default for reports: with hundreds of topic x language cells, FWER control (Holm) hides
    real differences, while an FDR of 5% says "about one in twenty flagged cells may be noise".
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m == 0:
        return out.tolist()
    order = idx[np.argsort(p[idx], kind="mergesort")]
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out.tolist()


CORRECTIONS = {"bh": benjamini_hochberg, "holm": holm}
CORRECTION_NAMES = {"bh": "Benjamini-Hochberg (false discovery rate)", "holm": "Holm (family-wise)"}


def adjust(pvalues: Sequence[float], method: str = "bh") -> list[float]:
    """Adjust p-values with `method` ("bh" or "holm")."""
    try:
        return CORRECTIONS[method](pvalues)
    except KeyError:
        raise ValueError(
            f"unknown correction {method!r}; use one of {sorted(CORRECTIONS)}"
        ) from None


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h, the effect size for two proportions (0.2 small, 0.5 medium, 0.8 large).

    Unlike a raw difference it weighs 2% vs 12% as a bigger change than 45% vs 55%.
    """
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


@dataclass(frozen=True)
class Comparison:
    """Two proportions k1/n1 (group of interest) and k2/n2 (the baseline), compared."""

    k1: int
    n1: int
    k2: int
    n2: int
    test: str  # "fisher", "chi2" or "none"
    p: float
    rate1: float
    rate2: float
    diff: float  # rate1 - rate2
    odds_ratio: float  # with a Haldane 0.5 correction when a cell is 0, so it stays finite
    h: float  # Cohen's h

    @property
    def testable(self) -> bool:
        return self.test != "none"


def compare(k1: int, n1: int, k2: int, n2: int, *, min_expected: float = 5.0) -> Comparison:
    """Compare k1/n1 with k2/n2 by an exact test, or chi-square where counts allow.

    Fisher's exact test whenever any expected count of the 2x2 table is below `min_expected`
    (the textbook condition under which the chi-square approximation misleads); otherwise
    Pearson's chi-square with Yates' continuity correction, which is fast and close to exact at
    those counts. A comparison with an empty group, or where both groups are all-or-nothing
    alike, is not testable (p = nan) and is left out of the correction family.
    """
    rate1 = k1 / n1 if n1 else math.nan
    rate2 = k2 / n2 if n2 else math.nan
    if n1 == 0 or n2 == 0:
        return Comparison(
            k1, n1, k2, n2, "none", math.nan, rate1, rate2, math.nan, math.nan, math.nan
        )
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=float)
    a, b, c, d = table.ravel()
    haldane = 0.5 if 0 in (a, b, c, d) else 0.0
    odds = ((a + haldane) * (d + haldane)) / ((b + haldane) * (c + haldane))
    diff = rate1 - rate2
    h = cohens_h(rate1, rate2)
    col = table.sum(axis=0)
    if 0 in col:  # both groups all successes (or all failures): nothing to test
        return Comparison(k1, n1, k2, n2, "none", math.nan, rate1, rate2, diff, odds, h)
    expected = np.outer(table.sum(axis=1), col) / table.sum()
    if expected.min() < min_expected:
        p = float(sps.fisher_exact(table.astype(int)).pvalue)
        test = "fisher"
    else:
        p = float(sps.chi2_contingency(table, correction=True).pvalue)
        test = "chi2"
    return Comparison(k1, n1, k2, n2, test, min(1.0, p), rate1, rate2, diff, odds, h)


def compare_many(
    k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray, *, min_expected: float = 5.0
) -> dict[str, np.ndarray]:
    """`compare` for whole columns at once: the same tests and numbers, computed in numpy.

    The chi-square branch is the closed form of Pearson's statistic with Yates' correction as
    scipy applies it (each |O - E| reduced by min(0.5, |O - E|)); only the rows that need
    Fisher's exact test call scipy one by one. A report tests thousands of cells, and this keeps
    that under a second.
    """
    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    a, b, c, d = k1, n1 - k1, k2, n2 - k2
    total = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        rate1 = np.where(n1 > 0, k1 / np.where(n1 > 0, n1, 1), np.nan)
        rate2 = np.where(n2 > 0, k2 / np.where(n2 > 0, n2, 1), np.nan)
        zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
        odds = np.where(zero, (a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5)), a * d / (b * c))
        h = 2 * np.arcsin(np.sqrt(rate1)) - 2 * np.arcsin(np.sqrt(rate2))
        col1, col2 = a + c, b + d
        testable = (n1 > 0) & (n2 > 0) & (col1 > 0) & (col2 > 0)
        # the smallest expected count is (smallest row total x smallest column total) / N
        e_min = np.minimum(n1, n2) * np.minimum(col1, col2) / np.where(total > 0, total, 1)
        dev = np.abs(a * d - b * c) / np.where(total > 0, total, 1)  # |O - E|, same in all cells
        adj = dev - np.minimum(0.5, dev)
        inv = (
            1 / np.where(n1 * col1 > 0, n1 * col1, 1)
            + 1 / np.where(n1 * col2 > 0, n1 * col2, 1)
            + 1 / np.where(n2 * col1 > 0, n2 * col1, 1)
            + 1 / np.where(n2 * col2 > 0, n2 * col2, 1)
        )
        chi2 = adj * adj * total * inv
        p = np.where(testable, sps.chi2.sf(chi2, 1), np.nan)
    fisher = testable & (e_min < min_expected)
    for i in np.flatnonzero(fisher):
        table = [[int(a[i]), int(b[i])], [int(c[i]), int(d[i])]]
        p[i] = sps.fisher_exact(table).pvalue
    test = np.where(~testable, "none", np.where(fisher, "fisher", "chi2"))
    diff = np.where((n1 > 0) & (n2 > 0), rate1 - rate2, np.nan)
    odds = np.where((n1 > 0) & (n2 > 0), odds, np.nan)
    return {
        "rate1": rate1,
        "rate2": rate2,
        "diff": diff,
        "odds_ratio": odds,
        "cohens_h": h,
        "test": test,
        "p": np.minimum(1.0, p),
    }


def fmt_pct(x: float, digits: int = 0) -> str:
    """A rate as a percentage for people ("–" for no data rather than a misleading 0%)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def fmt_ci(lo: float, hi: float) -> str:
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return "–"
    return f"{100 * lo:.0f}–{100 * hi:.0f}%"


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    if p < 0.0001:
        return "<0.0001"
    return f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def rate_ci(rate: float, lo: float, hi: float) -> str:
    """A rate with its 95% interval, "32% (23–43%)"; a dash when there is no rate."""
    return "–" if math.isnan(rate) else f"{fmt_pct(rate)} ({fmt_ci(lo, hi)})"


def outcome_cells(rec: dict[str, Any]) -> list[Any]:
    """One model's row of the outcomes table (model, jobs, n, the three label rates with
    intervals, empty, blocked, error), shared by the HTML and Markdown report and the diff."""
    return [
        rec["model"],
        rec["total"],
        rec["n"],
        rate_ci(rec["refusal_rate"], rec["refusal_lo"], rec["refusal_hi"]),
        rate_ci(rec["deflection_rate"], rec["deflection_lo"], rec["deflection_hi"]),
        rate_ci(rec["answer_rate"], rec["answer_lo"], rec["answer_hi"]),
        rec["empty"],
        rec["blocked"],
        rec["error"],
    ]
