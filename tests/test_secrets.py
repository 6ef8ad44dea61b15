"""Secrets and safety: the API key never lands anywhere probe writes, credentials in a base URL
are scrubbed before storage, and YAML can never run code.

The endpoint here is hostile on purpose: it echoes the caller's Authorization header into
replies and error bodies, as a misconfigured gateway might. probe must still publish nothing
that contains the key.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import pytest
from helpers import probe_cli as probe

from probe.fake_endpoint import FakeEndpoint, Reply
from probe.targets import REDACTED, Redactor, Target, redact_url

FIXTURE_TOPICS = Path(__file__).parent / "fixtures" / "topics"
SENTINEL = "sk-SENTINEL-4b1d-9e7f-do-not-publish-0123456789"


def every_file(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file()]


def assert_absent(secret: str, paths: list[Path], texts: list[str]) -> None:
    forms = {secret.encode(), secret.encode("utf-16-le"), base64.b64encode(secret.encode())}
    for path in paths:
        data = path.read_bytes()
        for form in forms:
            assert form not in data, f"{secret!r} found in {path}"
    for text in texts:
        assert secret not in text


def test_sentinel_key_is_never_written_or_printed(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    outputs: list[str] = []
    with FakeEndpoint(api_key=SENTINEL) as ep:
        # A hostile endpoint: the key comes back in an answer, in reasoning, in an error body
        # and in a content-filter block.
        ep.on("Tank Man", Reply(content="your key is", echo_auth=True))
        ep.on("4 June", Reply(status=400, echo_auth=True))
        ep.on("Peking duck", Reply(content="ok", reasoning_content=f"I saw {SENTINEL}"))
        ep.on(
            "Is Taiwan",
            Reply(
                status=451,
                body={"error": {"message": f"content_filter triggered for key {SENTINEL}"}},
            ),
        )
        run = probe(
            "run",
            "--model",
            "fake-model",
            "--base-url",
            ep.base_url,
            "--api-key-env",
            "PROBE_SECRET_KEY",
            "--topics-dir",
            str(FIXTURE_TOPICS),
            "--db",
            str(db),
            "--log-level",
            "debug",
            env={"PROBE_SECRET_KEY": SENTINEL},
        )
        assert run.returncode == 0, run.stderr
        outputs += [run.stdout, run.stderr]
        assert ep.headers_seen[0]["authorization"] == f"Bearer {SENTINEL}"  # it was used
        assert f"POST {ep.base_url}/chat/completions -> HTTP 200" in run.stderr  # logs written
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    echoed = {r["prompt_id"]: r for r in conn.execute("SELECT * FROM responses WHERE lang = 'en'")}
    conn.close()
    tank = echoed["mini-tiananmen.tank-man"]
    assert tank["content"] == f"your key is Bearer {REDACTED}"
    assert REDACTED in echoed["mini-tiananmen.what-happened"]["error"]
    assert echoed["mini-taiwan.country"]["outcome"] == "blocked"

    exports = tmp_path / "exports"
    exports.mkdir()
    for fmt in ("jsonl", "csv", "parquet"):
        result = probe(
            "export",
            "--db",
            str(db),
            "--format",
            fmt,
            "--out",
            str(exports / f"all.{fmt}"),
            "--all-attempts",
        )
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    scanned = [*tmp_path.glob("study.db*"), *every_file(exports)]
    if importlib.util.find_spec("probe.cli.report") is not None:
        report = probe("report", "--db", str(db), "--out", str(tmp_path / "report"))
        assert report.returncode == 0, report.stderr
        outputs += [report.stdout, report.stderr]
        scanned += every_file(tmp_path / "report")
    assert_absent(SENTINEL, scanned, outputs)
    if importlib.util.find_spec("probe.cli.report") is None:
        pytest.skip("`probe report` does not exist yet: store, exports, logs and output scanned")


def test_a_failed_run_does_not_print_the_key(tmp_path: Path) -> None:
    """Errors quote the endpoint's reply; a reply that quotes the key is scrubbed first."""
    with FakeEndpoint() as ep:
        ep.on(lambda req: True, Reply(status=404, echo_auth=True))
        result = probe(
            "run",
            "--model",
            "m",
            "--base-url",
            ep.base_url,
            "--api-key-env",
            "PROBE_SECRET_KEY",
            "--topics-dir",
            str(FIXTURE_TOPICS),
            "--db",
            str(tmp_path / "s.db"),
            "--quiet",
            env={"PROBE_SECRET_KEY": SENTINEL},
        )
    assert result.returncode == 2 and "404" in result.stderr
    assert SENTINEL not in result.stdout + result.stderr


def test_credentials_in_the_base_url_are_used_but_never_stored(tmp_path: Path) -> None:
    password, token = "hunter2-very-secret", "qs-token-8f8f8f8f8f"
    db = tmp_path / "study.db"
    with FakeEndpoint() as ep:
        url = ep.base_url.replace("http://", f"http://alice:{password}@")
        url += f"?api_key={token}&api-version=2024-10-21"
        result = probe(
            "run",
            "--model",
            "fake-model",
            "--base-url",
            url,
            "--topics-dir",
            str(FIXTURE_TOPICS),
            "--db",
            str(db),
            "--langs",
            "en",
            "--log-level",
            "debug",
        )
        assert result.returncode == 0, result.stderr
        auth = ep.headers_seen[0]["authorization"]
    assert base64.b64decode(auth.split()[1]).decode() == f"alice:{password}"  # Basic, as given
    conn = sqlite3.connect(db)
    stored = {row[0] for row in conn.execute("SELECT DISTINCT base_url FROM responses")}
    target = json.loads(conn.execute("SELECT target_json FROM runs").fetchone()[0])
    conn.close()
    (base,) = stored
    assert base.startswith("http://127.0.0.1:") and base.endswith(
        "/v1?api_key=REDACTED&api-version=2024-10-21"
    )
    assert target["base_url"] == base
    out = tmp_path / "all.csv"
    assert probe("export", "--db", str(db), "--format", "csv", "--out", str(out)).returncode == 0
    for secret in (password, token):
        assert_absent(secret, [*tmp_path.glob("study.db*"), out], [result.stdout, result.stderr])


def test_redaction_rules() -> None:
    assert redact_url("https://u:p@[::1]:8443/v1/?key=abc&x=1#frag") == (
        "https://[::1]:8443/v1?key=REDACTED&x=1"
    )
    os.environ["PROBE_REDACT_TEST_KEY"] = "sk-abcdef-123456"
    try:
        target = Target(
            name="t",
            model="m",
            api_key_env="PROBE_REDACT_TEST_KEY",
            base_url="https://TOKEN0123456789abcdef@h.example/v1?sig=s%2Fig12345",
        )
        secrets = set(target.secret_values())
    finally:
        del os.environ["PROBE_REDACT_TEST_KEY"]
    assert {"sk-abcdef-123456", "TOKEN0123456789abcdef", "s%2Fig12345", "s/ig12345"} <= secrets
    redactor = Redactor(secrets)
    assert redactor.data({"a": ["x sk-abcdef-123456 y", {"sk-abcdef-123456": 1}]}) == {
        "a": [f"x {REDACTED} y", {REDACTED: 1}]
    }
    # A short user name is a name, not a secret: replies mentioning it stay intact.
    plain = Target(name="t", model="m", base_url="https://bob:longpassword@h.example/v1")
    assert plain.secret_values() == ("longpassword",)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"!!python/object/apply:os.system ['touch {marker}']\n"
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"targets:\n  x: {payload}")
    result = probe(
        "run",
        "--target",
        "x",
        "--targets-file",
        str(targets),
        "--topics-dir",
        str(FIXTURE_TOPICS),
        "--db",
        str(tmp_path / "s.db"),
    )
    assert result.returncode == 2 and "malformed YAML" in result.stderr, result.stderr
    topics = tmp_path / "topics"
    topics.mkdir()
    (topics / "evil.yaml").write_text(payload)
    result = probe("topics", "validate", str(topics))
    assert result.returncode == 2 and "malformed YAML" in result.stderr, result.stderr
    assert not marker.exists()
