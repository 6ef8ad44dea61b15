"""`make bench`: run every benchmark and print one table (benchmark, measured, goal, met/gap).

The table is also written to benchmarks/results.json with the machine's CPU count and load
average, because these numbers are wall-clock measurements: on a shared machine whose load
exceeds its cores they read worse than the code is. Nothing here asserts; goals are checked
and reported, and a benchmark that fails to run becomes a row saying why.

    python benchmarks/run.py                 # everything
    python benchmarks/run.py sweep startup   # a subset (sweep, classify, startup, report)
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

Row = dict[str, Any]


def _sweep() -> list[Row]:
    from bench_sweep import bench_sweep

    return bench_sweep()


def _classify() -> list[Row]:
    from bench_classify import bench_classify

    return bench_classify()


def _startup() -> list[Row]:
    from bench_startup import bench_startup

    return bench_startup()


def _report() -> list[Row]:
    """bench_report.py belongs to the report's author; use it when it is there."""
    if importlib.util.find_spec("bench_report") is None:
        return [
            {
                "benchmark": "report: 100k responses",
                "measured": "skipped",
                "goal": "-",
                "met": None,
                "note": "benchmarks/bench_report.py not present",
            }
        ]
    from bench_report import bench_report

    result = bench_report(n=100_000)
    return [_report_row(result)]


def _report_row(result: dict[str, Any]) -> Row:
    """Map bench_report's dict onto a table row without assuming more than it promises."""
    if {"benchmark", "measured", "goal"} <= set(result) and "met" in result:
        return result
    seconds = result.get("report_s", result.get("seconds"))
    target = result.get("target_s")
    ok = result.get("ok", True)
    measured = f"{seconds:.1f} s" if isinstance(seconds, int | float) else str(seconds)
    if result.get("responses"):
        measured += f" ({result['responses']} responses)"
    met = None
    if isinstance(seconds, int | float) and isinstance(target, int | float):
        met = bool(ok) and seconds <= target
    row: Row = {
        "benchmark": f"report: `probe report` on {result.get('responses', '?')} responses",
        "value": seconds,
        "measured": measured if ok else f"failed: {result.get('stderr', '')[-200:]}",
        "goal": f"<= {target} s" if target is not None else "-",
        "met": met,
    }
    return row


BENCHMARKS: dict[str, Callable[[], list[Row]]] = {
    "sweep": _sweep,
    "classify": _classify,
    "startup": _startup,
    "report": _report,
}


def _verdict(row: Row) -> str:
    if row.get("met") is True:
        return "met"
    if row.get("met") is False:
        return "GAP"
    return "-"


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "measured", "goal", "met/gap")
    cells = [(str(r["benchmark"]), str(r["measured"]), str(r["goal"]), _verdict(r)) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    load_before = os.getloadavg()
    started = time.time()
    rows: list[Row] = []
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows += BENCHMARKS[name]()
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            rows.append(
                {"benchmark": name, "measured": f"failed: {exc}"[:200], "goal": "-", "met": None}
            )
    load_after = os.getloadavg()
    print()
    print_table(rows)
    cpus = os.cpu_count() or 0
    print(
        f"\n{cpus} CPUs; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
        + (
            " (a loaded machine: wall-clock rows read worse than the code is)"
            if max(load_before[0], load_after[0]) > cpus
            else ""
        )
    )
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "cpus": cpus,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
        "rows": rows,
    }
    out = HERE / "results.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
