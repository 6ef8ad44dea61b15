"""Helpers shared by the test modules that drive `probe` against the loopback endpoint."""

from __future__ import annotations

import sqlite3
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
