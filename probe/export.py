"""Write stored responses to JSONL, CSV or Parquet for other tools.

Files are written to a temporary name beside the target and renamed when complete, so an
interrupted export never leaves a half-written file under the requested name.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from probe.analysis import EXPORT_COLUMNS, response_rows
from probe.errors import InputError
from probe.store import connect

FORMATS = ("jsonl", "csv", "parquet")


def export(
    db_path: Path, fmt: str, out: Path, *, classifier: str | None = None, all_attempts: bool = False
) -> int:
    """Export one row per response; return the number of rows written."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not out.parent.exists():
        raise InputError(f"{out}: directory {out.parent} does not exist")
    db = connect(db_path, create=False)
    try:
        rows = response_rows(db, classifier=classifier, all_attempts=all_attempts)
    finally:
        db.close()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        else:
            import pandas as pd

            pd.DataFrame(rows, columns=EXPORT_COLUMNS).to_parquet(tmp, index=False)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(rows)
