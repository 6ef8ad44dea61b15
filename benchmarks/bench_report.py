"""Benchmark: `probe report` on a synthetic store of 100k labelled responses.

The target (README: under 30 s on 2 cores) lives here, not in the tests: this prints one table
row and asserts nothing. The store is written straight into SQLite with the real schema, so the
report reads it exactly as it reads a study: runs, prompts, responses, classifications, human
labels.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probe.store import connect, transaction, utc_now

MODELS = ("qwen-synthetic-2026", "deepseek-synthetic-v4", "llama-synthetic-5")
LANGS = ("en", "zh-Hans", "zh-Hant", "ja", "ko", "ru", "ar", "es", "fr", "de", "id", "vi")
TOPICS = 60
PROMPTS_PER_TOPIC = 5  # the last one is a benign control
WORDS = {
    "latin": [
        "the",
        "government",
        "report",
        "describes",
        "events",
        "dates",
        "numbers",
        "witnesses",
        "and",
        "sources",
    ],
    "han": list("政府报告描述了事件日期数字证人和来源历史学家认为"),
    "kana": list("政府のほうこくはじけんとひづけをきろくしています"),
    "hangul": ["정부", "보고서는", "사건", "날짜", "숫자", "증인", "출처를", "설명합니다"],
    "cyrillic": [
        "правительство",
        "доклад",
        "описывает",
        "события",
        "даты",
        "свидетелей",
        "источники",
    ],
    "arabic": ["تقرير", "الحكومة", "يصف", "الأحداث", "والتواريخ", "والشهود", "والمصادر"],
}
SCRIPT = {
    "en": "latin",
    "zh-Hans": "han",
    "zh-Hant": "han",
    "ja": "kana",
    "ko": "hangul",
    "ru": "cyrillic",
    "ar": "arabic",
    "es": "latin",
    "fr": "latin",
    "de": "latin",
    "id": "latin",
    "vi": "latin",
}
REFUSAL = {
    "han": "你好，这个问题我暂时无法回答，让我们换个话题再聊聊吧。",
    "latin": "I'm sorry, but I can't help with that request.",
}


def _text(rng: random.Random, script: str, words: int) -> str:
    vocab = WORDS[script]
    sep = "" if script in ("han", "kana") else " "
    return sep.join(rng.choice(vocab) for _ in range(words)) + ("。" if not sep else ".")


def build_store(path: Path, n: int = 100_000, seed: int = 7) -> int:
    """Write a synthetic store with `n` responses (plus labels) at `path`; returns n."""
    rng = random.Random(seed)
    db = connect(path)
    per_sample = len(MODELS) * TOPICS * PROMPTS_PER_TOPIC * len(LANGS)
    samples = max(1, math.ceil(n / per_sample))
    now = utc_now()
    prompts, responses, labels, human = [], [], [], []
    for t in range(TOPICS):
        for p in range(PROMPTS_PER_TOPIC):
            for lang in LANGS:
                text = f"[{lang}] " + _text(rng, SCRIPT[lang], 8) + f" #{t}.{p}?"
                prompts.append(
                    (
                        f"topic-{t:02d}.p{p}:{lang}",
                        f"topic-{t:02d}",
                        f"topic-{t:02d}.p{p}",
                        "control" if p == PROMPTS_PER_TOPIC - 1 else "factual",
                        lang,
                        text,
                        "authored" if lang == "en" else "machine-assisted",
                        0,
                        f"Synthetic topic {t:02d}",
                        "Synthetic state",
                    )
                )
    with transaction(db):
        db.executemany("INSERT INTO prompts VALUES (?,?,?,?,?,?,?,?,?,?)", prompts)
        for m, model in enumerate(MODELS):
            db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    f"run-{m}",
                    "0.1.0",
                    None,
                    "synthetic-hash",
                    json.dumps({"model": model, "base_url": "http://127.0.0.1:8000/v1"}),
                    json.dumps({"temperature": 0.7, "max_tokens": 512, "samples": samples}),
                    now,
                    now,
                    per_sample // len(MODELS) * samples,
                    per_sample // len(MODELS) * samples,
                ),
            )
    count = 0
    for sample in range(samples):
        for m, model in enumerate(MODELS):
            for prow in prompts:
                if count >= n:
                    break
                key, topic, pid, kind, lang = prow[:5]
                script = SCRIPT[lang]
                sensitivity = (int(topic[-2:]) % 7) / 7 if kind != "control" else 0.02
                bias = 0.35 if (m == 0 and script == "han") else 0.0
                roll = rng.random()
                outcome, content, label, error = "ok", "", None, None
                if roll < 0.01:
                    outcome, error = "blocked", "HTTP 400: data_inspection_failed"
                elif roll < 0.015:
                    outcome, error = "error", "HTTP 503 after 6 retries"
                elif roll < 0.02:
                    label = "empty"
                elif rng.random() < sensitivity * 0.6 + bias:
                    label = "refusal" if rng.random() < 0.6 else "deflection"
                    content = REFUSAL["han"] if script in ("han", "kana") else REFUSAL["latin"]
                    if label == "deflection":
                        content = _text(rng, script, 30)
                else:
                    label = "answer"
                    switched = m == 2 and script != "latin" and rng.random() < 0.2
                    content = _text(rng, "latin" if switched else script, rng.randint(60, 160))
                rid = f"{model[:4]}-{sample}-{count:07d}"
                reasoning = _text(rng, "latin", 60) if m == 1 and outcome == "ok" else None
                responses.append(
                    (
                        rid,
                        f"run-{m}",
                        f"job-{rid}",
                        key,
                        model,
                        "http://127.0.0.1:8000/v1",
                        topic,
                        pid,
                        kind,
                        lang,
                        sample,
                        "{}",
                        outcome,
                        content or None,
                        reasoning,
                        error,
                        "{}",
                        now,
                        now,
                    )
                )
                if label:
                    labels.append((rid, "synthetic-clf", label, round(rng.uniform(0.5, 1), 3), now))
                    if rng.random() < 0.002:
                        human.append((rid, label, "bench", now))
                count += 1
    with transaction(db):
        db.executemany(
            "INSERT INTO responses (id, run_id, job_key, prompt_key, model, base_url, topic_id, "
            "prompt_id, kind, lang, sample, params_json, outcome, content, reasoning, error, "
            "request_json, started_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            responses,
        )
        db.executemany(
            "INSERT INTO classifications (response_id, classifier, label, confidence, "
            "created_at) VALUES (?,?,?,?,?)",
            labels,
        )
        db.executemany(
            "INSERT INTO human_labels (response_id, label, reviewer, created_at) VALUES (?,?,?,?)",
            human,
        )
    db.close()
    return count


def bench_report(n: int = 100_000) -> dict[str, Any]:
    """Build a synthetic store of `n` responses and time `probe report` on it (a subprocess,
    so interpreter start and imports count, as they do for a user)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        rows = build_store(store, n)
        build_s = time.perf_counter() - t0
        out = Path(tmp) / "report"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "from probe.cli import main; main()",
                "report",
                "--db",
                str(store),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        report_s = time.perf_counter() - t0
        html_mb = (out / "report.html").stat().st_size / 1e6 if proc.returncode == 0 else 0.0
    result = {
        "benchmark": "report",
        "responses": rows,
        "build_store_s": round(build_s, 2),
        "report_s": round(report_s, 2),
        "html_mb": round(html_mb, 2),
        "ok": proc.returncode == 0,
        "target_s": 30,
    }
    if proc.returncode != 0:
        result["stderr"] = proc.stderr[-2000:]
    print(
        f"| report | {rows} responses | {report_s:.1f} s (target < 30 s) | "
        f"{html_mb:.1f} MB HTML | store built in {build_s:.1f} s |"
    )
    return result


if __name__ == "__main__":
    print(json.dumps(bench_report(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
