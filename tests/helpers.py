"""Helpers shared by the test modules that drive `probe` against the loopback endpoint."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from click.testing import CliRunner

from probe.cli import cli
from probe.fake_endpoint import FakeEndpoint


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def sweep(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, *extra: str
) -> tuple[int, str, str]:
    """`probe run` of the fixture topics against `endpoint`."""
    return invoke(
        "run",
        "--model",
        "fake-model",
        "--base-url",
        endpoint.base_url,
        "--topics-dir",
        str(topics_dir),
        "--db",
        str(db_path),
        "--quiet",
        *extra,
    )


def rows(db_path: Path, sql: str = "SELECT * FROM responses", *args: object) -> list[sqlite3.Row]:
    """Rows of a store, read with a fresh connection."""
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


PROBE = str(Path(sys.executable).with_name("probe"))


def run_command(base_url: str, topics: Path, db: Path, *extra: str) -> list[str]:
    """The `probe run` command line a subprocess test starts (the real console script)."""
    return [
        PROBE,
        "run",
        "--model",
        "m",
        "--base-url",
        base_url,
        "--topics-dir",
        str(topics),
        "--db",
        str(db),
        "--quiet",
        *extra,
    ]
