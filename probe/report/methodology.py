"""The methodology section, generated from the store itself.

Written from what was recorded (runs, parameters, topic-set hashes, classifier ids) rather than
from what someone remembers, so the section cannot drift from the data. Endpoints are shown as
stored: the runner strips credentials from base URLs and never stores keys; the name of the
environment variable that held a key is left out as well.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from probe.paths import package_root

CLASSIFIER_META = package_root() / "data" / "classifier" / "classifier.json"


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


_SECRET_KEY = re.compile(r"key|token|secret|passw|auth|credential", re.IGNORECASE)


def _redact(value: Any) -> Any:
    """Extra request fields as sent, except values under names that look like credentials: the
    runner never stores keys, but a user may have put one in `extra_body` by hand."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if _SECRET_KEY.search(str(k)) else _redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def classifier_accuracy(meta_path: Path | None = None) -> tuple[str | None, str]:
    """(classifier id of the metadata file, its measured dev-set accuracy as text).

    The accuracy comes from the key "dev_evaluation" of the classifier metadata; without it the
    report says "not measured" instead of implying a number.
    """
    path = meta_path or CLASSIFIER_META
    if not path.exists():
        return None, "not measured"
    meta = _loads(path.read_text(encoding="utf-8"))
    evaluation = meta.get("dev_evaluation")
    cid = meta.get("classifier_id")
    if isinstance(evaluation, int | float):
        return cid, f"{100 * float(evaluation):.1f}% accuracy"
    if not isinstance(evaluation, dict) or "accuracy" not in evaluation:
        return cid, "not measured"
    parts = [f"{100 * float(evaluation['accuracy']):.1f}% accuracy"]
    if isinstance(evaluation.get("macro_f1"), int | float):
        parts.append(f"macro-F1 {float(evaluation['macro_f1']):.3f}")
    if isinstance(evaluation.get("kappa"), int | float):
        parts.append(f"Cohen's κ {float(evaluation['kappa']):.3f}")
    if isinstance(evaluation.get("n"), int | float):
        parts.append(f"on {int(evaluation['n'])} held-out examples")
    return cid, ", ".join(parts)


def methodology(
    conn: sqlite3.Connection, df: pd.DataFrame, *, classifier_meta: Path | None = None
) -> dict[str, Any]:
    """Everything a reader needs to reproduce or judge the numbers, as plain values."""
    runs = [
        dict(r)
        for r in conn.execute(
            "SELECT id, probe_version, git_revision, topic_set_hash, target_json, params_json, "
            "started_at, ended_at, jobs_planned, jobs_sent FROM runs ORDER BY started_at"
        )
    ]
    endpoints: dict[tuple[str, str], dict[str, Any]] = {}
    params: list[dict[str, Any]] = []
    for run in runs:
        target = _loads(run["target_json"])
        key = (str(target.get("model", "")), str(target.get("base_url", "")))
        entry = endpoints.setdefault(key, {"model": key[0], "base_url": key[1], "runs": 0})
        entry["runs"] += 1
        p = _loads(run["params_json"])
        # unset sampling parameters are the provider's defaults: say so rather than hide them
        public: dict[str, Any] = {
            k: "provider default" if p.get(k) is None else p[k]
            for k in ("temperature", "max_tokens", "seed")
        }
        public.update(
            {
                k: ", ".join(map(str, p[k])) if isinstance(p[k], list) else p[k]
                for k in ("samples", "langs", "topics")
                if p.get(k) not in (None, [], "")
            }
        )
        if p.get("system"):
            public["system prompt"] = p["system"]
        if p.get("extra_body"):
            public["extra body"] = _redact(p["extra_body"])
        params.append({"run": run["id"], "model": key[0], **public})
    resolved = (
        df.dropna(subset=["resolved_model"])
        .groupby("model")["resolved_model"]
        .agg(lambda s: ", ".join(sorted(set(map(str, s)))))
        .to_dict()
        if len(df)
        else {}
    )
    samples = int(df["sample"].max()) + 1 if len(df) and df["sample"].notna().any() else 0
    labelled_by = df["classifier"].dropna()
    model_ids = sorted({c for c in labelled_by.unique() if not str(c).startswith("human:")})
    human = int((df["label_source"] == "human").sum())
    meta_id, accuracy = classifier_accuracy(classifier_meta)
    if meta_id and model_ids and meta_id not in model_ids:
        accuracy = (
            f"not measured for {', '.join(model_ids)} (the shipped classifier "
            f"{meta_id}: {accuracy})"
        )
    created = df["created_at"].dropna()
    prompts = df.drop_duplicates(["prompt_id", "lang"])
    machine = prompts[
        (prompts["prompt_origin"].fillna("") != "authored")
        & (prompts["prompt_reviewed"].fillna(0).astype(int) == 0)
    ]
    return {
        "runs": runs,
        "endpoints": sorted(endpoints.values(), key=lambda e: (e["model"], e["base_url"])),
        "params": params,
        "resolved_models": resolved,
        "first_reply": str(created.min()) if len(created) else "–",
        "last_reply": str(created.max()) if len(created) else "–",
        "first_run": runs[0]["started_at"] if runs else "–",
        "last_run": max((r["ended_at"] or r["started_at"] for r in runs), default="–"),
        "samples": samples,
        "topic_set_hashes": sorted({r["topic_set_hash"] for r in runs}),
        "probe_versions": sorted({r["probe_version"] for r in runs}),
        "git_revisions": sorted({r["git_revision"] for r in runs if r["git_revision"]}),
        "classifiers": model_ids,
        "classifier_accuracy": accuracy,
        "human_labels": human,
        "unlabelled": int(((df["outcome"] == "ok") & df["label"].isna()).sum()),
        "responses": len(df),
        "topics": int(df["topic_id"].nunique()),
        "langs": sorted(df["lang"].unique().tolist()),
        "prompt_texts": len(prompts),
        "unreviewed_translations": len(machine),
    }


def caveats(meta: dict[str, Any], *, correction_name: str, alpha: float) -> list[str]:
    """What the numbers do not say; generated so that each caveat matches this store."""
    items = [
        "Labels come from an automatic classifier "
        f"({', '.join(meta['classifiers']) or 'none recorded'}; dev-set: "
        f"{meta['classifier_accuracy']}). Human labels from `probe review` "
        f"({meta['human_labels']} here) replace its labels wherever they exist.",
        "Rates are shares of labelled replies only. Provider blocks, transport errors and empty "
        "replies are outcomes, counted and shown apart, never folded into refusals.",
        "Intervals are Wilson 95% intervals; they treat replies as independent, while samples "
        "of one prompt are correlated, so intervals for cells with few prompts are optimistic.",
        f"Language-vs-English tests: Fisher's exact test, or Pearson's chi-square where every "
        f"expected count is at least 5, corrected with {correction_name}; significant means "
        f"adjusted p < {alpha}.",
        "Benign control prompts are the baseline: refusing them is over-refusal, not censorship.",
        "The language-switch signal compares writing systems (scripts), so a switch between "
        "languages that share one (English, Spanish, Indonesian) is not detected.",
        "The reasoning-divergence signal is a heuristic (reasoning of 40+ words before a refusal "
        "or deflection); read the transcripts before quoting it.",
    ]
    if meta["unreviewed_translations"]:
        items.append(
            f"{meta['unreviewed_translations']} of {meta['prompt_texts']} prompt texts "
            "are machine-assisted translations not yet reviewed by a speaker; a "
            "language gap may partly reflect the translation."
        )
    if meta["unlabelled"]:
        items.append(
            f"{meta['unlabelled']} replies have no label yet and are left out of every rate; "
            "run `probe classify` on the store and write the report again."
        )
    if len(meta["topic_set_hashes"]) > 1:
        items.append(
            "The store holds runs with different topic-set hashes: prompts changed "
            "between runs; compare cells with care."
        )
    if meta["samples"] <= 1:
        items.append("One sample per prompt: rates reflect prompts, not sampling variability.")
    return items
