"""Write stored responses to JSONL, CSV or Parquet for other tools.

Files are written to a temporary name beside the target, flushed to disk and renamed when
complete, so an interrupted export never leaves a half-written file under the requested name
(and a crash right after never leaves an empty one). The finished file gets the permissions a
normally created file would have, not the private mode of a temporary file.
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
    if not out.parent.is_dir():
        raise InputError(f"{out}: directory {out.parent} does not exist; create it first")
    if out.is_dir():
        raise InputError(f"{out}: is a directory; give a file name for --out")
    store_files = {Path(f"{db_path}{suffix}").resolve() for suffix in ("", "-wal", "-shm")}
    if out.resolve() in store_files:
        raise InputError(f"{out}: that is the store itself; pick another --out")
    db = connect(db_path, create=False)
    try:
        if classifier is not None:
            known = [
                row[0]
                for row in db.execute("SELECT DISTINCT classifier FROM classifications ORDER BY 1")
            ]
            if classifier not in known:
                raise InputError(
                    f"{db_path}: no labels from classifier {classifier!r}; "
                    + (f"known: {', '.join(known)}" if known else "run `probe classify` first")
                )
        rows = response_rows(db, classifier=classifier, all_attempts=all_attempts)
    finally:
        db.close()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise InputError(
            f"{out}: cannot write in {out.parent} ({exc.strerror}); pick another --out"
        ) from exc
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
        _sync(tmp)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{out}: cannot write the export ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(rows)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
