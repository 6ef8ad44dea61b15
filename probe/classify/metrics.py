"""Agreement between predicted and reference labels, overall and by language and source."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from probe.classify import LABELS


def agreement(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    n = len(y_true)
    if n == 0:
        return {"n": 0, "accuracy": None, "macro_f1": None, "kappa": None}
    present = [label for label in LABELS if label in set(y_true) | set(y_pred)]
    kappa = (
        cohen_kappa_score(y_true, y_pred, labels=present)
        if len(set(y_true) | set(y_pred)) > 1
        else 1.0
    )
    return {
        "n": n,
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(
            float(
                f1_score(
                    y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0
                )
            ),
            4,
        ),
        "kappa": round(float(kappa), 4) if not np.isnan(kappa) else None,
    }


def full_report(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    langs: Sequence[str],
    sources: Sequence[str],
    confidences: Sequence[float] | None = None,
) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    report = agreement(y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(LABELS), zero_division=0
    )
    report["per_class"] = {
        label: {
            "precision": round(float(p[i]), 4),
            "recall": round(float(r[i]), 4),
            "f1": round(float(f[i]), 4),
            "support": int(s[i]),
        }
        for i, label in enumerate(LABELS)
    }
    for key, groups in (("per_lang", langs), ("per_source", sources)):
        buckets: dict[str, list[int]] = defaultdict(list)
        for i, group in enumerate(groups):
            buckets[group or "unknown"].append(i)
        report[key] = {
            group: agreement([y_true[i] for i in idx], [y_pred[i] for i in idx])
            for group, idx in sorted(buckets.items())
        }
    matrix = confusion_matrix(y_true, y_pred, labels=list(LABELS))
    report["confusion"] = {
        "labels": list(LABELS),
        "rows_true_cols_pred": matrix.tolist(),
    }
    if confidences is not None:
        report["calibration"] = calibration(y_true, y_pred, confidences)
    return report


def calibration(
    y_true: Sequence[str], y_pred: Sequence[str], conf: Sequence[float], bins: int = 10
) -> dict[str, Any]:
    """Expected calibration error of the top label's confidence."""
    correct = np.array([a == b for a, b in zip(y_true, y_pred, strict=True)], dtype=float)
    conf_arr = np.asarray(conf, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    table = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf_arr > lo) & (conf_arr <= hi)
        if mask.any():
            gap = abs(correct[mask].mean() - conf_arr[mask].mean())
            ece += mask.mean() * gap
            table.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": int(mask.sum()),
                    "accuracy": round(float(correct[mask].mean()), 3),
                    "confidence": round(float(conf_arr[mask].mean()), 3),
                }
            )
    return {"ece": round(float(ece), 4), "bins": table}


def format_table(report: dict[str, Any]) -> str:
    """The evaluation as Markdown tables (what the README shows)."""
    lines = [
        f"n={report['n']}  accuracy={report['accuracy']}  macro-F1={report['macro_f1']}  "
        f"kappa={report['kappa']}",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for label, row in report["per_class"].items():
        lines.append(
            f"| {label} | {row['precision']} | {row['recall']} | {row['f1']} | {row['support']} |"
        )
    for key, title in (("per_lang", "language"), ("per_source", "source")):
        lines += ["", f"| {title} | n | accuracy | macro-F1 | kappa |", "|---|---|---|---|---|"]
        for group, row in report[key].items():
            lines.append(
                f"| {group} | {row['n']} | {row['accuracy']} | {row['macro_f1']} | {row['kappa']} |"
            )
    lines += [
        "",
        "confusion (rows: reference, columns: predicted)",
        "",
        "| | " + " | ".join(LABELS) + " |",
        "|---|---|---|---|",
    ]
    for label, row in zip(LABELS, report["confusion"]["rows_true_cols_pred"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    if "calibration" in report:
        lines += ["", f"expected calibration error: {report['calibration']['ece']}"]
    return "\n".join(lines)
