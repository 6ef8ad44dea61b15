"""Bad input, through the real `probe` console script: one clear line, a non-zero exit, and
nothing half-written.

Every case runs `probe` in a subprocess, as a user would meet it: stderr is exactly one line
that says what is wrong, where, and what to do; the exit code is 2 for usage and input
errors; no store is created (or an existing one is left as it was) and no request is sent
when the input is what is wrong.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PROBE, digest
from helpers import fake_run_args as run_args
from helpers import one_error_line as one_line
from helpers import probe_cli as probe

from probe.fake_endpoint import FakeEndpoint

FIXTURE_TOPICS = Path(__file__).parent / "fixtures" / "topics"

GOOD = """\
id: demo
title: Demo
sensitive_to: Nobody
languages: [en, zh-Hans]
rationale: A test.
prompts:
  - id: demo.one
    kind: factual
    texts:
      en: {text: "One?", origin: authored}
      zh-Hans: {text: "一？", origin: machine-assisted}
  - id: demo.two
    kind: control
    texts:
      en: {text: "Two?", origin: authored}
      zh-Hans: {text: "二？", origin: machine-assisted}
"""


@pytest.fixture(scope="module")
def ep() -> Iterator[FakeEndpoint]:
    with FakeEndpoint() as endpoint:
        yield endpoint


def topics_with(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    root = tmp_path / "topics"
    root.mkdir(exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")
    return root


# Topic files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        (GOOD.replace("title: Demo\n", "title: [Demo\n"), 3, ["malformed YAML", "fix the syntax"]),
        (
            GOOD.replace('zh-Hans: {text: "一', 'zh_CN: {text: "一'),
            9,
            ["unknown language code 'zh_CN'", "use BCP-47"],
        ),
        (GOOD.replace("id: demo.two", "id: demo.one"), 12, ["duplicate prompt id 'demo.one'"]),
        (
            GOOD.replace('      zh-Hans: {text: "二？", origin: machine-assisted}\n', ""),
            14,
            ["lacks the declared language(s) zh-Hans", "add the translation"],
        ),
    ],
    ids=["malformed-yaml", "unknown-language-code", "duplicate-id", "missing-translation"],
)
def test_bad_topic_file(
    ep: FakeEndpoint, tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    topics = topics_with(tmp_path, text)
    db = tmp_path / "study.db"
    before = ep.count()
    line_text = one_line(probe(*run_args(ep, topics, db)), f"{topics / 'demo.yaml'}:", *fragments)
    assert f"demo.yaml:{line}:" in line_text
    assert not db.exists() and ep.count() == before


def test_duplicate_topic_across_files(ep: FakeEndpoint, tmp_path: Path) -> None:
    topics = topics_with(tmp_path, GOOD)
    shutil.copy(topics / "demo.yaml", topics / "demo-copy.yaml")
    one_line(
        probe(*run_args(ep, topics, tmp_path / "s.db")),
        "demo-copy.yaml",
        "must match the file name",
    )
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(
    ("langs", "fragments"),
    [
        ("zh_CN", ["--langs: 'zh_CN' is not a language code", "BCP-47", "available: en, zh-Hans"]),
        ("fr", ["--langs: no selected prompt has a 'fr' text", "available: en, zh-Hans"]),
    ],
)
def test_unknown_language_on_the_command_line(
    ep: FakeEndpoint, tmp_path: Path, langs: str, fragments: list[str]
) -> None:
    db = tmp_path / "s.db"
    one_line(probe(*run_args(ep, topics_with(tmp_path, GOOD), db, "--langs", langs)), *fragments)
    assert not db.exists()


def test_a_language_some_prompts_lack_is_noted_not_silent(ep: FakeEndpoint, tmp_path: Path) -> None:
    partial = GOOD.replace("languages: [en, zh-Hans]", "languages: [en]").replace(
        '      zh-Hans: {text: "二？", origin: machine-assisted}\n', ""
    )
    result = probe(
        *run_args(ep, topics_with(tmp_path, partial), tmp_path / "s.db", "--langs", "zh-Hans")
    )
    assert result.returncode == 0, result.stderr
    assert "1 of 2 selected prompts have no 'zh-Hans' text" in result.stderr
    assert "1 jobs: 0 already stored, 1 sent" in result.stdout


def test_unknown_kind(ep: FakeEndpoint, tmp_path: Path) -> None:
    one_line(
        probe(*run_args(ep, FIXTURE_TOPICS, tmp_path / "s.db", "--kinds", "rumour")),
        "--kinds: unknown kind 'rumour'",
        "factual",
    )


# The endpoint ----------------------------------------------------------------------------------


def test_unreachable_base_url(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = probe(
        "run",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--topics-dir",
        str(FIXTURE_TOPICS),
        "--db",
        str(db),
        "--quiet",
    )
    one_line(result, "cannot reach http://127.0.0.1:9/v1", "is the server running")
    assert not db.exists()  # nothing was stored, so no store is left behind


def test_base_url_that_is_no_url(tmp_path: Path) -> None:
    result = probe(
        "run",
        "--model",
        "m",
        "--base-url",
        "localhost:8080/v1",
        "--topics-dir",
        str(FIXTURE_TOPICS),
        "--db",
        str(tmp_path / "s.db"),
        "--quiet",
    )
    one_line(result, "is not an http(s) URL", "https://api.example.com/v1")


def test_wrong_key_leaves_an_existing_store_as_it_was(ep: FakeEndpoint, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert probe(*run_args(ep, FIXTURE_TOPICS, db, "--langs", "en")).returncode == 0
    tables = ("runs", "prompts", "responses")

    def counts() -> list[int]:
        conn = sqlite3.connect(db)
        try:
            return [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables]
        finally:
            conn.close()

    before = counts()
    with FakeEndpoint(api_key="right-key") as locked:
        result = probe(
            *run_args(locked, FIXTURE_TOPICS, db, "--api-key-env", "PROBE_T_KEY"),
            env={"PROBE_T_KEY": "wrong-key"},
        )
        one_line(result, "rejected the API key (HTTP 401)", "$PROBE_T_KEY")
        assert locked.count() <= 8  # stopped at once, not a retry storm
    assert counts() == before  # no run row, no prompt, no response from the failed run


def test_wrong_key_on_a_new_store_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with FakeEndpoint(api_key="right-key") as locked:
        result = probe(
            "run",
            "--model",
            "m",
            "--base-url",
            locked.base_url,
            "--api-key-env",
            "PROBE_T_KEY",
            "--topics-dir",
            str(FIXTURE_TOPICS),
            "--db",
            str(db),
            "--quiet",
            env={"PROBE_T_KEY": "wrong-key"},
        )
    one_line(result, "401")
    assert not any(tmp_path.glob("s.db*"))


def test_missing_key_variable(ep: FakeEndpoint, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    env = {k: v for k, v in os.environ.items() if k != "PROBE_UNSET_KEY"}
    result = subprocess.run(
        [PROBE, *run_args(ep, FIXTURE_TOPICS, db, "--api-key-env", "PROBE_UNSET_KEY")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    one_line(result, "environment variable PROBE_UNSET_KEY is not set", "export it")
    assert not db.exists()


def test_key_with_a_stray_character(ep: FakeEndpoint, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    key = "sk-pasted\u200bkey-0123456789"
    result = probe(
        *run_args(ep, FIXTURE_TOPICS, db, "--api-key-env", "PROBE_T_KEY"), env={"PROBE_T_KEY": key}
    )
    line = one_line(result, "PROBE_T_KEY", "cannot be sent in an HTTP header", "U+200B")
    assert "sk-pasted" not in line and not db.exists()


def test_unknown_model(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with FakeEndpoint(models=("real-model",)) as ep:
        result = probe(
            "run",
            "--model",
            "nope",
            "--base-url",
            ep.base_url,
            "--topics-dir",
            str(FIXTURE_TOPICS),
            "--db",
            str(db),
            "--quiet",
        )
    one_line(result, "404", "'nope'", "check --model and --base-url")
    assert not db.exists()


# Targets files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        ("targets.toml", '[targets.x\nmodel = "m"\n', ["malformed TOML"]),
        ("targets.yaml", "targets:\n  x: {model: m, base_url: [\n", ["malformed YAML"]),
        (
            "targets.toml",
            '[targets.x]\nmodel = "m"\nbase_url = "http://h/v1"\nmodle = 1\n',
            ["unknown key(s) modle", "allowed:"],
        ),
        (
            "targets.toml",
            '[targets.x]\nmodel = "m"\nbase_url = "http://h/v1"\napi_key = "sk"\n',
            ["api_key_env"],
        ),
        (
            "targets.toml",
            '[targets.x]\nmodel = "m"\nbase_url = "http://h/v1"\nconcurrency = "many"\n',
            ["concurrency must be an integer"],
        ),
        (
            "targets.toml",
            '[targets.x]\nmodel = "m"\nbase_url = "h:1/v1"\n',
            ["is not an http(s) URL"],
        ),
        (
            "targets.toml",
            '[targets.x]\nmodel = "m"\nbase_url = "http://h/v1"\n'
            '[targets.x.extra_body]\nmodel = "other"\n',
            ["extra_body may not set model"],
        ),
    ],
    ids=["toml", "yaml", "unknown-key", "inline-key", "bad-number", "bad-url", "extra-model"],
)
def test_bad_targets_file(tmp_path: Path, name: str, text: str, fragments: list[str]) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = probe(
        "run",
        "--target",
        "x",
        "--targets-file",
        str(path),
        "--topics-dir",
        str(FIXTURE_TOPICS),
        "--db",
        str(tmp_path / "s.db"),
        "--quiet",
    )
    one_line(result, str(path), *fragments)
    assert not (tmp_path / "s.db").exists()


# Export --------------------------------------------------------------------------------------


def test_export_refuses_bad_destinations(ep: FakeEndpoint, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert probe(*run_args(ep, FIXTURE_TOPICS, db, "--langs", "en")).returncode == 0
    before = digest(db)
    one_line(
        probe("export", "--db", str(db), "--format", "csv", "--out", str(db)),
        "that is the store itself",
    )
    one_line(
        probe(
            "export", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "nope" / "x.csv")
        ),
        "does not exist",
    )
    one_line(
        probe(
            "export",
            "--db",
            str(tmp_path / "missing.db"),
            "--format",
            "csv",
            "--out",
            str(tmp_path / "x.csv"),
        ),
        "no such store",
        "probe run",
    )
    one_line(
        probe(
            "export",
            "--db",
            str(db),
            "--format",
            "csv",
            "--out",
            str(tmp_path / "x.csv"),
            "--classifier",
            "nope",
        ),
        "no labels from classifier 'nope'",
        "probe classify",
    )
    assert digest(db) == before
    assert not (tmp_path / "missing.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
