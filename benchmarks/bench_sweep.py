"""Benchmark: 2,000 requests to a loopback endpoint with a fixed 200 ms latency, concurrency 32.

With perfect overlap the sweep takes the floor N x latency / concurrency = 12.5 s; the goal
is a wall time within 10 % of it, so the harness (HTTP client, JSON, one SQLite commit per
reply) never becomes the bottleneck. The endpoint runs in its own process (a
ThreadingHTTPServer whose 32 handlers sleep), so its CPU is not counted as the harness's, and
`probe run` runs as a user runs it: a subprocess whose own CPU time is read with wait4.

Rows: the sweep's own wall time (run_jobs, from `--json`) and the whole command's (start-up
included), each over the floor, and harness CPU per request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REQUESTS = 2000
LATENCY_S = 0.2
CONCURRENCY = 32
GOAL_RATIO = 1.10
PROMPTS, LANGS, SAMPLES = 100, ("en", "zh-Hans", "fr", "ar"), 5  # 100 x 4 x 5 = 2,000 jobs


def write_topics(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    doc = {
        "id": "bench",
        "title": "Benchmark",
        "sensitive_to": "Nobody",
        "rationale": "Generated for the sweep benchmark.",
        "languages": list(LANGS),
        "prompts": [
            {
                "id": f"bench.p{i:04d}",
                "kind": "control" if i % 5 == 0 else "factual",
                "texts": {
                    lang: {
                        "text": f"[{lang}] What happened in benchmark event {i}?",
                        "origin": "authored",
                    }
                    for lang in LANGS
                },
            }
            for i in range(PROMPTS)
        ],
    }
    (root / "bench.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def start_endpoint(latency_s: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe.fake_endpoint", "--delay", str(latency_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the loopback endpoint did not start: {url!r}")
    return proc, url


def bench_sweep() -> list[dict[str, Any]]:
    """Both HTTP transports: the default (the openai package) and the minimal built-in one."""
    rows: list[dict[str, Any]] = []
    for transport in ("openai", "builtin"):
        for row in _bench_sweep(transport):
            row["benchmark"] = f"[{transport}] {row['benchmark']}"
            rows.append(row)
    return rows


def _bench_sweep(transport: str) -> list[dict[str, Any]]:
    floor = REQUESTS * LATENCY_S / CONCURRENCY
    with tempfile.TemporaryDirectory() as tmp:
        topics = write_topics(Path(tmp) / "topics")
        db = Path(tmp) / "sweep.db"
        server, url = start_endpoint(LATENCY_S)
        try:
            probe = str(Path(sys.executable).with_name("probe"))
            args = [
                probe,
                "run",
                "--model",
                "bench-model",
                "--base-url",
                url,
                "--topics-dir",
                str(topics),
                "--db",
                str(db),
                "--samples",
                str(SAMPLES),
                "--concurrency",
                str(CONCURRENCY),
                "--quiet",
                "--json",
            ]
            env = {**os.environ, "PROBE_HTTP_TRANSPORT": transport}
            code, out, err, wall, cpu = run_measured(args, env)
            # The same command again finds every job stored and sends nothing: its CPU is the
            # start-up (imports, topic loading, store checks), to subtract from the sweep's.
            _, _, _, startup_wall, startup_cpu = run_measured(args, env)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if code != 0:
        raise RuntimeError(f"probe run failed: {err.strip()[-500:]}")
    summary = json.loads(out)
    if summary["ok"] != REQUESTS:
        raise RuntimeError(f"expected {REQUESTS} ok replies, got {summary}")
    cpu_ms = max(0.0, cpu - startup_cpu) * 1000 / REQUESTS
    sweep_ratio = summary["seconds"] / floor
    command_ratio = wall / floor
    return [
        {
            "benchmark": f"sweep: {REQUESTS} req, {LATENCY_S * 1000:.0f} ms, c={CONCURRENCY} "
            "(run_jobs wall / floor)",
            "value": round(sweep_ratio, 3),
            "measured": f"{sweep_ratio:.3f} ({summary['seconds']:.2f} s / {floor:.2f} s)",
            "goal": f"<= {GOAL_RATIO:.2f}",
            "met": sweep_ratio <= GOAL_RATIO,
        },
        {
            "benchmark": "sweep: whole `probe run` command, start-up included (wall / floor)",
            "value": round(command_ratio, 3),
            "measured": f"{command_ratio:.3f} ({wall:.2f} s / {floor:.2f} s)",
            "goal": f"<= {GOAL_RATIO:.2f}",
            "met": command_ratio <= GOAL_RATIO,
            "note": "the difference from the row above is start-up (imports and parsing the "
            "topic YAML, in pure Python, twice: probe/yamlpos.py)",
        },
        {
            "benchmark": "sweep: harness CPU per request (user+sys of `probe run`, start-up apart)",
            "value": round(cpu_ms, 3),
            "measured": f"{cpu_ms:.2f} ms ({cpu:.2f} s CPU in all; start-up "
            f"{startup_cpu:.2f} s CPU, {startup_wall:.2f} s wall)",
            "goal": "(reported)",
            "met": None,
        },
    ]


def run_measured(args: list[str], env: dict[str, str]) -> tuple[int, str, str, float, float]:
    """Run a command; return its exit code, stdout, stderr, wall seconds and own CPU seconds
    (user + sys from wait4, so the endpoint process, still alive, is not counted)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode(),
            err.read().decode(),
            wall,
            usage.ru_utime + usage.ru_stime,
        )


if __name__ == "__main__":
    for row in bench_sweep():
        print(json.dumps(row))
