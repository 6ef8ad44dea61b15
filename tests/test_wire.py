"""The wire under a sweep, against the real loopback endpoint: body framings and encodings,
connection reuse, proxies. Every framing must be read byte-exact, a compressed bomb must be
refused like any oversized reply, and nothing may be sent twice when a server drops
kept-alive connections."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import PROBE, rows, sweep, sweep_tank, tank_rows, write_topics

from probe.fake_endpoint import FakeEndpoint, Reply


@pytest.mark.parametrize(
    "reply",
    [
        Reply(content="chunked 分块 " * 50, chunked=True),
        Reply(content="gzip 压缩 " * 50, encoding="gzip"),
        Reply(content="deflate " * 50, encoding="deflate"),
        Reply(content="gzip and chunked " * 50, encoding="gzip", chunked=True),
        Reply(content="until close " * 50, no_length=True),
    ],
    ids=["chunked", "gzip", "deflate", "gzip-chunked", "until-close"],
)
def test_body_framings_are_read_exactly(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, reply: Reply
) -> None:
    endpoint.on("Tank Man", reply)
    code, _, err = sweep_tank(
        endpoint,
        topics_dir,
        db_path,
        "--concurrency",
        "1",
    )
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert (tank["outcome"], tank["content"], tank["retries"]) == (
        "ok",
        (reply.content or "").strip(),
        0,
    )
    assert {r["outcome"] for r in rows(db_path)} == {"ok"}  # the connection stayed usable


def test_a_small_gzip_bomb_is_refused_like_a_big_reply(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_MAX_RESPONSE_BYTES", "100000")
    endpoint.on("Tank Man", Reply(content="0" * 5_000_000, encoding="gzip"), repeat_last=False)
    code, _, err = sweep_tank(endpoint, topics_dir, db_path)
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert tank["outcome"] == "error" and "larger than 100000 bytes" in tank["error"]


def test_server_closing_kept_alive_connections_repeats_nothing(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    """A closed keep-alive connection is noticed before reuse. If the close races the next
    send, that request never reached the server: the resend is counted as a retry, and the
    server still sees each job exactly once."""
    endpoint.default = lambda req: Reply(content="bye", close_after=True)
    code, _, err = sweep(endpoint, topics_dir, db_path, "--concurrency", "1")
    assert code == 0, err
    stored = rows(db_path)
    assert [r["outcome"] for r in stored] == ["ok"] * 10
    assert sum(r["retries"] for r in stored) <= 2
    assert endpoint.count() == 10


def test_proxied_endpoints_go_through_the_proxy(tmp_path: Path) -> None:
    """With HTTP_PROXY set, requests go to the proxy (here the loopback endpoint, which answers
    absolute-form requests like a forward proxy) and faults are classified the same way."""
    topics = write_topics(tmp_path / "topics", 3, ("en",))
    db = tmp_path / "proxied.db"
    with FakeEndpoint() as proxy:
        proxy.on("number 1?", Reply(drop_mid_body=True, content="cut " * 50), Reply(content="ok"))
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update({"HTTP_PROXY": proxy.base_url.removesuffix("/v1"), "PROBE_BACKOFF_BASE": "0.01"})
        result = subprocess.run(
            [
                PROBE,
                "run",
                "--model",
                "m",
                "--base-url",
                "http://provider.invalid/v1",
                "--topics-dir",
                str(topics),
                "--db",
                str(db),
                "--quiet",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert proxy.count() == 4
    stored = rows(db)
    assert [r["outcome"] for r in stored] == ["ok"] * 3
    assert sorted(r["retries"] for r in stored) == [0, 0, 1]
    assert {r["base_url"] for r in stored} == {"http://provider.invalid/v1"}
