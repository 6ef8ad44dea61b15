"""Helpers shared by the test modules that drive `probe` against the loopback endpoint."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
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


def probe_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `probe` console script as a user would, with fast retry backoff."""
    return subprocess.run(
        [PROBE, *args],
        env={**os.environ, "PROBE_BACKOFF_BASE": "0.01", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str], *fragments: str, code: int = 2) -> str:
    """The result failed with `code` and exactly one `error:` line on stderr holding `fragments`."""
    err = result.stderr
    assert result.returncode == code, (result.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def digest(path: Path) -> str:
    """The sha256 of a file, to show a refused command left it byte for byte as it was."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_args(base_url: str, topics: Path, db: Path, *extra: str, model: str = "m") -> list[str]:
    """The arguments of a quiet `probe run` of `topics` against `base_url` into `db`."""
    return [
        "run",
        "--model",
        model,
        "--base-url",
        base_url,
        "--topics-dir",
        str(topics),
        "--db",
        str(db),
        "--quiet",
        *extra,
    ]


def run_command(base_url: str, topics: Path, db: Path, *extra: str) -> list[str]:
    """The `probe run` command line a subprocess test starts (the real console script)."""
    return [PROBE, *run_args(base_url, topics, db, *extra)]


def write_topics(
    root: Path, prompts: int, langs: tuple[str, ...], topic: str = "gen", control_every: int = 5
) -> Path:
    """A generated topic set: `prompts` prompts, each in every one of `langs`, every
    `control_every`-th a control; prompt i reads "[lang] generated question number i?"."""
    root.mkdir(parents=True, exist_ok=True)
    doc = {
        "id": topic,
        "title": "Generated",
        "sensitive_to": "Nobody",
        "rationale": "Generated for tests.",
        "languages": list(langs),
        "prompts": [
            {
                "id": f"{topic}.p{i:04d}",
                "kind": "control" if i % control_every == 0 else "factual",
                "texts": {
                    lang: {"text": f"[{lang}] generated question number {i}?", "origin": "authored"}
                    for lang in langs
                },
            }
            for i in range(prompts)
        ],
    }
    (root / f"{topic}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def tank_rows(db_path: Path) -> list[sqlite3.Row]:
    """The stored rows of the fixture prompt most fault tests aim at."""
    return [r for r in rows(db_path) if r["prompt_id"] == "mini-tiananmen.tank-man"]


def sweep_tank(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, *extra: str
) -> tuple[int, str, str]:
    """`probe run` of the English Tiananmen fixture only: the sweep most fault tests aim at."""
    return sweep(
        endpoint, topics_dir, db_path, "--langs", "en", "--topics", "mini-tiananmen", *extra
    )


def fake_run_args(endpoint: FakeEndpoint, topics: Path, db: Path, *extra: str) -> list[str]:
    """The arguments of a quiet `probe run` against the loopback endpoint's `fake-model`."""
    return run_args(endpoint.base_url, topics, db, *extra, model="fake-model")
