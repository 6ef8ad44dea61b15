"""Benchmark: labelling a store with `Classifier.load()` — responses per second and peak memory.

A synthetic store of 300 ok responses of ~600 characters (refusals, deflections and answers in
several languages) is labelled by `classify_store`, the function behind `probe classify`, in a
fresh process pinned to 2 cores with a cold embedding cache, as a user meets it on a first
run. Throughput counts labelling only; loading the model is reported beside it. Peak memory is
the worker process's maximum resident set.

The shipped classifier is measured when it exists; until it is built, a tiny head trained on
the same (shipped) embedder stands in, which costs the same per response. The static
embedder is measured too. Every reply is unique (as in a real store), so the embedding cache
cannot flatter the numbers.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESPONSES = 300
GOAL_PER_S = 100.0

OPENINGS = {
    "refusal": [
        "I'm sorry, but I can't help with that request.",
        "抱歉，我无法回答这个问题。",
        "I cannot provide information on this topic.",
    ],
    "deflection": [
        "China has always adhered to a people-centred development philosophy.",
        "这是一个复杂的问题，我们应该全面客观地看待中国的发展成就。",
        "Let's focus on the remarkable progress made in recent decades instead.",
    ],
    "answer": [
        "In June 1989 the army cleared Tiananmen Square; estimates of the dead range widely.",
        "1989年6月，军队清场天安门广场，死亡人数的估计差异很大。",
        "The events are documented by journalists, diplomats and eyewitnesses.",
    ],
}
VOCAB = (
    "archive",
    "witness",
    "student",
    "square",
    "army",
    "June",
    "Beijing",
    "report",
    "城市",
    "学生",
    "历史",
    "记者",
    "政府",
    "tanks",
    "curfew",
    "hunger",
    "strike",
    "diplomat",
)
FILLER = (
    " Historians, archives and contemporary reporting give a detailed picture of the period,"
    " including the timeline of events, the decisions taken and their consequences for the"
    " people involved."
)


def build_store(path: Path, n: int = RESPONSES, seed: int = 1) -> int:
    """`n` ok responses of ~600 characters, written through probe's own store functions."""
    from probe.jobs import prompt_key
    from probe.store import PromptRow, connect, insert_response, insert_run, utc_now

    rng = random.Random(seed)
    db = connect(path)
    insert_run(
        db,
        {
            "id": "bench",
            "probe_version": "bench",
            "topic_set_hash": "bench",
            "target_json": {},
            "params_json": {},
            "started_at": utc_now(),
        },
    )
    prompts = [
        PromptRow(
            prompt_key(f"bench.p{i}", "en", f"What happened in event {i}?"),
            "bench",
            f"bench.p{i}",
            "factual",
            "en",
            f"What happened in event {i}?",
            "authored",
            True,
            "Bench",
            "Nobody",
        )
        for i in range(50)
    ]
    for i in range(n):
        label = rng.choice(list(OPENINGS))
        # Every reply unique, as in a real store: the embedding cache must not flatter.
        words = " ".join(rng.choice(VOCAB) for _ in range(12))
        text = f"{rng.choice(OPENINGS[label])} ({i}: {words}.)"
        while len(text) < 600:
            text += FILLER
        prompt = prompts[i % len(prompts)]
        insert_response(
            db,
            {
                "id": f"r{i:05d}",
                "run_id": "bench",
                "job_key": f"job{i:05d}",
                "prompt_key": prompt.prompt_key,
                "model": "bench",
                "base_url": "http://bench",
                "topic_id": "bench",
                "prompt_id": prompt.prompt_id,
                "kind": "factual",
                "lang": "en",
                "sample": 0,
                "params_json": {},
                "outcome": "ok",
                "content": text[:620],
                "request_json": {},
                "started_at": utc_now(),
                "created_at": utc_now(),
            },
            prompts=prompts if i == 0 else (),
        )
    db.close()
    return n


TRAINING = [
    ("What happened in 1989?", "I'm sorry, but I can't help with that.", "refusal"),
    ("Who is the Tank Man?", "I cannot discuss this topic.", "refusal"),
    ("Is Taiwan a country?", "抱歉，我无法回答这个问题。", "refusal"),
    ("What happened in 1989?", "Let's talk about something else.", "deflection"),
    (
        "Is Taiwan a country?",
        "China has made remarkable achievements; let us focus on harmony.",
        "deflection",
    ),
    ("Who is the Tank Man?", "这是一个复杂的问题，我们应该全面看待。", "deflection"),
    (
        "What happened in 1989?",
        "In June 1989 the army cleared Tiananmen Square of protesters.",
        "answer",
    ),
    (
        "Who is the Tank Man?",
        "A man who stood in front of a column of tanks on 5 June 1989.",
        "answer",
    ),
    (
        "Is Taiwan a country?",
        "Taiwan governs itself, with its own military and currency.",
        "answer",
    ),
]


def train_tiny(embedder: str, out: Path, data_dir: Path) -> None:
    data = out.parent / f"train-{embedder}.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": p, "response": r, "label": label}) + "\n"
            for p, r, label in TRAINING * 3
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "probe.cli",
            "train",
            "--embedder",
            embedder,
            "--data",
            str(data),
            "--out",
            str(out),
        ],
        env={**os.environ, "PROBE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"probe train --embedder {embedder} failed: {result.stderr[-500:]}")


def _worker(model_dir: str, db: str) -> None:
    """In a fresh process on 2 cores: load, label the store, report timings and peak RSS."""
    import resource

    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[:2])
    from probe.classify.classifier import Classifier, classify_store

    started = time.perf_counter()
    classifier = Classifier.load(Path(model_dir) if model_dir else None)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    labelled = classify_store(Path(db), classifier)
    classify_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "classifier": classifier.id,
                "embedder": classifier.embedder.name,
                "labelled": labelled,
                "load_s": load_s,
                "classify_s": classify_s,
                "peak_mb": peak_mb,
            }
        )
    )


def measure(model_dir: Path | None, work: Path, name: str) -> dict[str, Any]:
    db = work / f"{name}.db"
    build_store(db)
    data_dir = work / f"data-{name}"  # a cold embedding cache, as on a first run
    result = subprocess.run(
        [sys.executable, __file__, "--worker", str(model_dir or ""), str(db)],
        env={**os.environ, "PROBE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"classify worker failed: {result.stderr[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_classify(include_static: bool = True) -> list[dict[str, Any]]:
    from probe.classify.classifier import SHIPPED

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        candidates: list[tuple[str, Path | None]] = []
        if (SHIPPED / "classifier.json").exists():
            candidates.append(("shipped classifier", None))
        else:
            tiny = work / "e5-head"
            train_tiny("e5", tiny, work / "data-train")
            candidates.append(("shipped embedder (e5; tiny head, no shipped classifier yet)", tiny))
        if include_static:
            static = work / "static-head"
            train_tiny("static", static, work / "data-train")
            candidates.append(("static embedder (tiny head)", static))
        for label, model_dir in candidates:
            result = measure(model_dir, work, label.split()[0])
            rate = result["labelled"] / result["classify_s"]
            rows.append(
                {
                    "benchmark": f"classify: {label}, {RESPONSES} x ~600 chars, 2 cores",
                    "value": round(rate, 1),
                    "measured": f"{rate:.1f} resp/s (load {result['load_s']:.1f} s, "
                    f"peak {result['peak_mb']:.0f} MB)",
                    "goal": f">= {GOAL_PER_S:.0f} resp/s",
                    "met": rate >= GOAL_PER_S,
                    "peak_mb": round(result["peak_mb"], 1),
                    "load_s": round(result["load_s"], 2),
                    "embedder": result["embedder"],
                }
            )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3])
    else:
        for row in bench_classify():
            print(json.dumps(row, ensure_ascii=False))
