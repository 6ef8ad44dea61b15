"""Where a real model and the classifier meet: the local Qwen through the whole pipeline.

Skipped only when llama-cpp-python is not installed (`make test` installs it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner
from conftest_local import local_server  # noqa: F401  (session fixture)

from probe.cli import cli
from probe.local import ServerInfo

TOPICS = Path(__file__).parent / "fixtures" / "local-topics"


def test_real_model_through_run_classify_export(
    local_server: ServerInfo,  # noqa: F811
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "local.db"
    runner = CliRunner()
    args = [
        "run",
        "--model",
        local_server.model,
        "--base-url",
        local_server.base_url,
        "--topics-dir",
        str(TOPICS),
        "--db",
        str(db_path),
        "--temperature",
        "0",
        "--seed",
        "0",
        "--max-tokens",
        "96",
        "--concurrency",
        "1",
        "--timeout",
        "300",
        "--quiet",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM responses").fetchall()
    assert len(rows) == 6
    assert {r["outcome"] for r in rows} == {"ok"}, [dict(r) for r in rows if r["outcome"] != "ok"]
    assert all(r["retries"] == 0 and r["error"] is None for r in rows)
    assert all(r["content"] and r["resolved_model"] for r in rows)
    # a rerun sends nothing
    again = runner.invoke(cli, args)
    assert "6 already stored, 0 sent" in again.output
    result = runner.invoke(cli, ["classify", "--db", str(db_path), "--quiet"])
    assert result.exit_code == 0, result.output
    labels = {
        (r["prompt_id"], r["lang"]): (r["label"], r["content"])
        for r in db.execute(
            "SELECT r.prompt_id, r.lang, r.content, c.label FROM responses r "
            "JOIN classifications c ON c.response_id = r.id"
        )
    }
    assert labels[("local-check.tiananmen", "en")][0] == "refusal", labels
    assert labels[("local-check.capital", "en")][0] == "answer", labels
    db.close()
