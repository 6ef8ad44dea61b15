"""Benchmark: start-up. `probe --help` must answer in under 0.5 s (heavy imports are lazy).

Each command runs as a fresh subprocess through the installed console script, best of 5, so
interpreter start and imports count as they do for a user. Two more rows are reported
without a goal, because they bound every `probe run`: `probe run --help` (the run command's
imports) and loading the shipped topic set, which every run does before sending anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_S = 0.5
REPEATS = 5


def best_of(args: list[str], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def topic_load_seconds() -> tuple[float, int]:
    code = (
        "import time; t = time.perf_counter()\n"
        "from probe.paths import default_topics_dir\n"
        "from probe.topics import load_topics\n"
        "s = load_topics(default_topics_dir())\n"
        "print(time.perf_counter() - t, sum(len(p.texts) for i in s.topics "
        "for p in i.topic.prompts))\n"
    )
    best, texts = float("inf"), 0
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        best, texts = min(best, float(out[0])), int(out[1])
    return best, texts


def bench_startup() -> list[dict[str, Any]]:
    probe = str(Path(sys.executable).with_name("probe"))
    help_s = best_of([probe, "--help"])
    run_help_s = best_of([probe, "run", "--help"])
    topics_s, texts = topic_load_seconds()
    return [
        {
            "benchmark": "start-up: `probe --help` (subprocess, best of 5)",
            "value": round(help_s, 3),
            "measured": f"{help_s:.3f} s",
            "goal": f"< {GOAL_S} s",
            "met": help_s < GOAL_S,
        },
        {
            "benchmark": "start-up: `probe run --help` (subprocess, best of 5)",
            "value": round(run_help_s, 3),
            "measured": f"{run_help_s:.3f} s",
            "goal": "(reported)",
            "met": None,
        },
        {
            "benchmark": f"start-up: load the shipped topic set ({texts} texts, every run)",
            "value": round(topics_s, 3),
            "measured": f"{topics_s:.2f} s",
            "goal": "(reported)",
            "met": None,
        },
    ]


if __name__ == "__main__":
    for row in bench_startup():
        print(json.dumps(row))
