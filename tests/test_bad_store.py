"""Bad stores, through the real `probe` console script: a store from a newer probe, a path that
cannot be written, a read-only file, a database of another program. Each is refused with one
clear line and exit 2 before any request is sent, and the file is left byte for byte as it was.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PROBE, digest
from helpers import fake_run_args as run_args
from helpers import one_error_line as one_line
from helpers import probe_cli as probe

from probe.fake_endpoint import FakeEndpoint
from probe.store import SCHEMA_VERSION, connect

FIXTURE_TOPICS = Path(__file__).parent / "fixtures" / "topics"


@pytest.fixture(scope="module")
def ep() -> Iterator[FakeEndpoint]:
    with FakeEndpoint() as endpoint:
        yield endpoint


def newer_store(path: Path) -> Path:
    db = connect(path)
    db.execute(
        "INSERT INTO schema_migrations VALUES (?, 'from-the-future', '2030-01-01')",
        (SCHEMA_VERSION + 1,),
    )
    db.close()
    return path


@pytest.mark.parametrize("command", ["run", "export"])
def test_store_from_a_newer_schema(ep: FakeEndpoint, tmp_path: Path, command: str) -> None:
    db = newer_store(tmp_path / "future.db")
    before = digest(db)
    if command == "run":
        result = probe(*run_args(ep, FIXTURE_TOPICS, db))
    else:
        result = probe(
            "export", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "out.csv")
        )
    one_line(result, str(db), f"schema version {SCHEMA_VERSION + 1} is newer", "upgrade probe")
    assert digest(db) == before
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda tmp: tmp / "no" / "such" / "dir" / "s.db", ["does not exist", "create it"]),
        (
            lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0] / "s.db",
            ["is not a directory"],
        ),
        (lambda tmp: (tmp / "adir", (tmp / "adir").mkdir())[0], ["is a directory"]),
    ],
    ids=["missing-directory", "parent-is-a-file", "path-is-a-directory"],
)
def test_unwritable_store_path(
    ep: FakeEndpoint, tmp_path: Path, make: object, fragments: list[str]
) -> None:
    db = make(tmp_path)  # type: ignore[operator]
    before = ep.count()
    one_line(probe(*run_args(ep, FIXTURE_TOPICS, db)), str(db), *fragments)
    assert ep.count() == before  # refused before any request went out


def test_read_only_store_is_refused_before_any_request(ep: FakeEndpoint) -> None:
    """A store the user may not write: refused before a single request is paid for.

    Root ignores file modes, so as root the check runs as `nobody` through setpriv."""
    as_root = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if as_root and not setpriv:
        pytest.skip("running as root without setpriv: cannot make a store unwritable")
    work = Path(tempfile.mkdtemp(prefix="probe-ro-"))
    try:
        work.chmod(0o755)
        topics = work / "topics"
        shutil.copytree(FIXTURE_TOPICS, topics)
        db = work / "ro.db"
        connect(db).close()
        db.chmod(0o444)
        work.chmod(0o555)
        before_bytes, before = digest(db), ep.count()
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if as_root else []
        env = {**os.environ, "HOME": str(work)}
        result = subprocess.run(
            [*prefix, PROBE, *run_args(ep, topics, db)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if as_root and "Permission denied" in result.stderr and "probe" not in result.stderr:
            pytest.skip(f"nobody cannot run the venv's probe: {result.stderr.strip()}")
        one_line(result, str(db), "permissions")
        assert ep.count() == before and digest(db) == before_bytes
    finally:
        work.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)


def test_a_database_that_is_not_a_probe_store_is_left_alone(
    ep: FakeEndpoint, tmp_path: Path
) -> None:
    other = tmp_path / "accounts.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance REAL)")
    conn.commit()
    conn.close()
    text_file = tmp_path / "notes.db"
    text_file.write_text("not a database at all\n" * 100)
    for path in (other, text_file):
        before = digest(path)
        one_line(
            probe(*run_args(ep, FIXTURE_TOPICS, path)),
            str(path),
            "not a probe store",
            "pick another --db",
        )
        assert digest(path) == before
