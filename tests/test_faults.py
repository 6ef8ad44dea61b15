"""Faults a flaky provider throws at a long sweep, against the real loopback endpoint.

People point probe at commercial APIs for hours and publish what it stored: every fault must
end as exactly one stored result per job (after retries, or after a rerun), nothing sent twice
for a stored job, and a fault that would fail every job the same way must stop the run with
one clear line instead of filling the store with errors.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from helpers import invoke, rows, run_args, run_command, sweep, sweep_tank, tank_rows, write_topics

from probe.backend import retry_after_seconds
from probe.fake_endpoint import FAULTS, FakeEndpoint, Reply, fault_reply
from probe.runner import RetryPolicy, failure_threshold

# One fault at a time ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FAULTS)
def test_each_fault_is_retried_and_stored_once(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, kind: str
) -> None:
    endpoint.on("Tank Man", fault_reply(kind, timeout_s=1.0), Reply(content="recovered"))
    code, _, err = sweep_tank(
        endpoint,
        topics_dir,
        db_path,
        "--timeout",
        "1",
    )
    assert code == 0, err
    tank = tank_rows(db_path)
    assert [(r["outcome"], r["content"], r["retries"]) for r in tank] == [("ok", "recovered", 1)]
    assert endpoint.count("Tank Man") == 2
    assert len(rows(db_path)) == 3  # every job of the topic exactly once


def test_slow_drip_is_cut_by_the_total_deadline(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    """Each chunk arrives well within a per-read timeout; the whole reply never would."""
    endpoint.on("Tank Man", Reply(content="x" * 2000, drip_s=0.2), Reply(content="quick"))
    started = time.monotonic()
    code, _, err = sweep_tank(
        endpoint,
        topics_dir,
        db_path,
        "--timeout",
        "1",
    )
    assert code == 0, err
    assert time.monotonic() - started < 5  # the drip alone would take 6 s
    (tank,) = tank_rows(db_path)
    assert (tank["content"], tank["retries"]) == ("quick", 1)


def test_slow_drip_within_the_deadline_is_stored_intact(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    text = "滴水穿石 drip " * 60
    endpoint.on("Tank Man", Reply(content=text, drip_s=0.01))
    code, _, err = sweep(endpoint, topics_dir, db_path, "--langs", "en", "--timeout", "5")
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert (tank["content"], tank["retries"]) == (text.strip(), 0)


def test_huge_reply_is_stored_whole(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    text = ("天安门 Tiananmen 1989 — " * 200_000)[:4_000_000]
    endpoint.on("Tank Man", Reply(content=text))
    code, _, err = sweep_tank(endpoint, topics_dir, db_path)
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert tank["outcome"] == "ok" and tank["content"] == text.strip()


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "until-close"])
def test_reply_over_the_cap_is_refused_then_retried_next_run(
    endpoint: FakeEndpoint,
    topics_dir: Path,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    streamed: bool,
) -> None:
    monkeypatch.setenv("PROBE_MAX_RESPONSE_BYTES", "65536")
    endpoint.on("Tank Man", Reply(content="y" * 1_000_000, no_length=streamed), repeat_last=False)
    code, _, err = sweep_tank(endpoint, topics_dir, db_path)
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert tank["outcome"] == "error" and tank["retries"] == 0
    assert "larger than 65536 bytes" in tank["error"] and tank["response_json"] is None
    assert endpoint.count("Tank Man") == 1  # the same huge reply is not asked for again
    monkeypatch.delenv("PROBE_MAX_RESPONSE_BYTES")
    code, out, err = sweep_tank(endpoint, topics_dir, db_path)
    assert code == 0 and "2 already stored, 1 sent" in out, out + err
    latest = [
        r
        for r in rows(db_path, "SELECT * FROM latest_responses")
        if r["prompt_id"].endswith("tank-man")
    ]
    assert [r["outcome"] for r in latest] == ["ok"]


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"choices": ["not an object"]}, "error"),
        ([1, 2, 3], "error"),
        ("just a string", "error"),
        ({"choices": [{"message": "text, not an object"}]}, "ok"),
        ({"choices": [{"message": {"content": 42}}], "usage": "n/a", "model": ["x"]}, "ok"),
        ({"choices": [{"message": {"content": [{"type": "text", "text": "in parts"}]}}]}, "ok"),
        ({"choices": [{"message": {"content": "deep"}}], "usage": {"prompt_tokens": "many"}}, "ok"),
    ],
)
def test_odd_reply_shapes_are_stored_not_crashed_on(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, body: object, outcome: str
) -> None:
    endpoint.on("Tank Man", Reply(body=body))
    code, _, err = sweep_tank(
        endpoint,
        topics_dir,
        db_path,
        "--max-retries",
        "1",
    )
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert tank["outcome"] == outcome
    assert tank["response_json"] is not None  # the raw reply is kept as evidence


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"Retry-After": "-5"}) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"Retry-After": "nan"}) is None
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (retry_after_seconds({"Retry-After": when}) or 0) <= 31
    policy = RetryPolicy(max_retries=6, base_s=0.5, cap_s=60)
    assert policy.delay(0, 2.0) == 2.0  # Retry-After wins
    assert policy.delay(0, 10_000) == 300  # but a day-long wait is capped
    for retry in range(8):
        ceiling = min(60, 0.5 * 2**retry)
        assert ceiling / 2 <= policy.delay(retry, None) <= ceiling


def test_retry_after_is_honoured(endpoint: FakeEndpoint, topics_dir: Path, db_path: Path) -> None:
    endpoint.on("Tank Man", Reply(status=503, headers={"Retry-After": "1"}), Reply(content="ok"))
    code, _, err = sweep_tank(endpoint, topics_dir, db_path)
    assert code == 0, err
    (tank,) = tank_rows(db_path)
    assert tank["retries"] == 1 and tank["latency_ms"] < 1000

    def when(stamp: str) -> datetime:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")

    assert (when(tank["created_at"]) - when(tank["started_at"])).total_seconds() >= 0.95


# Faults that fail every job the same way ------------------------------------------------------


def test_key_revoked_mid_run_stops_and_the_rerun_resumes(tmp_path: Path, db_path: Path) -> None:
    topics = write_topics(tmp_path / "topics", 10, ("en",))
    with FakeEndpoint(api_key="good") as ep:
        ep.on(
            lambda req: True,
            *[Reply(content="fine")] * 3,
            Reply(
                status=401,
                body={
                    "error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}
                },
            ),
        )
        args = (
            "run",
            "--model",
            "m",
            "--base-url",
            ep.base_url,
            "--api-key-env",
            "K",
            "--topics-dir",
            str(topics),
            "--db",
            str(db_path),
            "--quiet",
            "--concurrency",
            "1",
        )
        code, _, err = invoke(*args, env={"K": "good"})
        assert code == 2 and err.count("\n") == 1, err
        assert "401" in err and "$K" in err
        assert len(rows(db_path)) == 3  # what came before the 401 is kept, the 401 is not
        (run,) = rows(db_path, "SELECT * FROM runs")
        assert run["ended_at"] and run["jobs_sent"] == 3
        ep.rules.clear()
        before = ep.count()
        code, out, err = invoke(*args, env={"K": "good"})
        assert code == 0 and "3 already stored, 7 sent" in out, out + err
        assert ep.count() - before == 7


def test_out_of_quota_stops_at_once(tmp_path: Path, db_path: Path) -> None:
    topics = write_topics(tmp_path / "topics", 30, ("en",))
    quota = {
        "error": {
            "message": "You exceeded your current quota, please check your plan",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }
    with FakeEndpoint() as ep:
        ep.on(lambda req: True, Reply(status=429, body=quota))
        code, _, err = invoke(*run_args(ep.base_url, topics, db_path, "--concurrency", "4"))
        assert code == 2 and err.count("\n") == 1, err
        assert "quota" in err and "run the same command again" in err
        assert ep.count() <= 4  # no retries, no further jobs
    assert not db_path.exists()  # nothing was stored, so no store was left behind


def test_every_job_failing_stops_the_run_with_one_line(tmp_path: Path, db_path: Path) -> None:
    topics = write_topics(tmp_path / "topics", 200, ("en",))
    with FakeEndpoint() as ep:
        ep.on(
            lambda req: True,
            Reply(status=400, body={"error": {"message": "max_tokens is too large"}}),
        )
        code, _, err = invoke(*run_args(ep.base_url, topics, db_path, "--concurrency", "4"))
        sent = ep.count()
    assert code == 3, err
    assert err.count("\n") == 1 and "max_tokens is too large" in err
    assert "run the same command again" in err
    threshold = failure_threshold(4)
    assert threshold <= sent <= threshold + 4
    assert len(rows(db_path)) == sent  # every failure is on record, none repeated


def test_duplicate_selection_sends_each_job_once(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    code, out, err = sweep(endpoint, topics_dir, db_path, "--topics", "mini-taiwan,mini-taiwan")
    assert code == 0, err
    assert endpoint.count() == 4 and len(rows(db_path)) == 4


# The long flaky sweep -----------------------------------------------------------------------


def test_2000_jobs_with_20_percent_faults(tmp_path: Path) -> None:
    """2,000 jobs (250 prompts x 4 languages x 2 samples) at concurrency 64, a fifth of all
    requests faulted (every kind), plus jobs that fail past their retries: the first run stores
    exactly one row per job and never more requests than it counted; once the faults stop, a
    rerun sends only the failed jobs and leaves exactly one result per job and no error."""
    langs = ("en", "zh-Hans", "fr", "ar")
    topics = write_topics(tmp_path / "topics", 250, langs)
    db = tmp_path / "flaky.db"
    env = {**os.environ, "PROBE_BACKOFF_BASE": "0.005", "PROBE_MAX_RESPONSE_BYTES": "200000"}
    with FakeEndpoint(fault_rate=0.2, seed=7, fault_timeout_s=2.0) as ep:
        # Jobs past their retries: a reply too large to store, and a 503 that outlasts them.
        for i in range(0, 250, 50):
            ep.on(
                f"[en] generated question number {i}?",
                Reply(content="z" * 300_000),
                repeat_last=False,
            )
            ep.on(
                f"[fr] generated question number {i}?", *[Reply(status=503)] * 40, repeat_last=False
            )
        args = run_command(
            ep.base_url,
            topics,
            db,
            "--samples",
            "2",
            "--concurrency",
            "64",
            "--timeout",
            "2",
            "--max-retries",
            "6",
            "--json",
        )
        first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr[-3000:]
        assert sum(ep.faults_sent.values()) >= 400 and set(ep.faults_sent) == set(FAULTS)
        sent_first = Counter(ep.texts())
        stored = rows(
            db,
            "SELECT r.job_key, r.outcome, r.retries, p.text FROM responses r "
            "JOIN prompts p ON p.prompt_key = r.prompt_key",
        )
        assert len(stored) == 2000 and len({r["job_key"] for r in stored}) == 2000
        errors = [r for r in stored if r["outcome"] == "error"]
        assert 10 <= len(errors) <= 30, Counter(r["text"][:4] for r in errors)
        attempts: Counter[str] = Counter()
        for r in stored:
            attempts[r["text"]] += r["retries"] + 1
        # Never a request the run did not count (no hidden duplicate sends). A request that
        # timed out before the server read it is counted but never arrives, hence <=.
        over = {t: (sent_first[t], attempts[t]) for t in sent_first if sent_first[t] > attempts[t]}
        assert not over, list(over.items())[:5]
        assert set(sent_first) == set(attempts)

        ep.fault_rate = 0.0
        ep.rules.clear()
        before = len(ep.texts())
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr[-3000:]
        assert len(ep.texts()) - before == len(errors)  # only the failed jobs were sent again
    results = rows(
        db, "SELECT job_key, COUNT(*) AS n FROM responses WHERE outcome != 'error' GROUP BY job_key"
    )
    assert len(results) == 2000 and {r["n"] for r in results} == {1}
    latest = rows(db, "SELECT outcome, COUNT(*) AS n FROM latest_responses GROUP BY outcome")
    assert {r["outcome"]: r["n"] for r in latest} == {"ok": 2000}
    assert rows(db, "PRAGMA integrity_check")[0][0] == "ok"
