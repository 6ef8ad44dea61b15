"""Crashes: `probe run` and `probe classify` killed with SIGKILL at several points, then rerun.

After every kill the store must pass SQLite's integrity check, and the rerun must lose no job,
duplicate none, and send no request for a job that was already stored (only the few in flight
at the kill may be sent again). SIGTERM and a second concurrent run are covered too.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import PROBE, run_command, write_topics

from probe.classify.classifier import SHIPPED
from probe.fake_endpoint import FakeEndpoint, Reply
from probe.jobs import expand_jobs
from probe.runner import run_jobs
from probe.targets import Params, Target
from probe.topics import load_topics

LANGS = ("en", "zh-Hans", "fr", "ar")
CONCURRENCY = 8


def query(db_path: Path, sql: str) -> list[tuple]:
    """Read a store another process may be writing (or was killed while writing)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return []
    try:
        return db.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()


def count(db_path: Path, table: str) -> int:
    found = query(db_path, f"SELECT COUNT(*) FROM {table}")
    return found[0][0] if found else 0


def stored_texts(db_path: Path) -> set[str]:
    return {
        row[0]
        for row in query(
            db_path,
            "SELECT p.text FROM responses r JOIN prompts p ON p.prompt_key = r.prompt_key "
            "WHERE r.outcome IN ('ok', 'blocked')",
        )
    }


def kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], limit_s: float = 60
) -> None:
    """SIGKILL `proc` as soon as `ready()` holds."""
    deadline = time.monotonic() + limit_s
    while not ready():
        assert proc.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline, "never reached the kill point"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_sweep_killed_three_times_loses_and_repeats_nothing(tmp_path: Path) -> None:
    topics = write_topics(
        tmp_path / "topics", 100, LANGS, "crash", 4
    )  # 400 jobs, each with its own text
    db = tmp_path / "crash.db"
    env = {**os.environ, "PROBE_BACKOFF_BASE": "0.01"}
    with FakeEndpoint(delay_s=0.03) as ep:
        args = run_command(ep.base_url, topics, db, "--concurrency", str(CONCURRENCY))
        kill_points: list[Callable[[], bool]] = [
            lambda: ep.count() >= 1,  # the first request is out, nothing stored yet
            lambda: count(db, "responses") >= 120,
            lambda: count(db, "responses") >= 260,
        ]
        snapshots: list[tuple[int, set[str]]] = []
        for ready in kill_points:
            proc = subprocess.Popen(
                args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            kill_when(proc, ready)
            assert proc.returncode == -signal.SIGKILL
            assert query(db, "PRAGMA integrity_check") == [("ok",)]
            snapshots.append((ep.count(), stored_texts(db)))
        final = subprocess.run(
            args + ["--json"], env=env, capture_output=True, text=True, timeout=120
        )
        assert final.returncode == 0, final.stderr
        summary = json.loads(final.stdout)
        sent = ep.texts()
    assert summary["already_done"] == len(snapshots[-1][1])
    assert summary["already_done"] + summary["sent"] == 400
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    per_job = query(db, "SELECT job_key, COUNT(*) FROM responses GROUP BY job_key")
    assert len(per_job) == 400 and {n for _, n in per_job} == {1}  # none lost, none twice
    assert query(db, "SELECT DISTINCT outcome FROM responses") == [("ok",)]
    for index, texts in snapshots:
        again = [t for t in sent[index:] if t in texts]
        assert not again, f"{len(again)} stored jobs were sent again, e.g. {again[:3]}"
    repeated = sum(n - 1 for n in Counter(sent).values())
    assert repeated <= len(kill_points) * CONCURRENCY  # only what was in flight at a kill
    runs = query(db, "SELECT ended_at FROM runs ORDER BY started_at")
    assert runs[-1][0] is not None  # killed runs have no end time; the last one does


def test_sigterm_stops_cleanly_and_says_how_to_resume(tmp_path: Path) -> None:
    topics = write_topics(tmp_path / "topics", 50, LANGS, "crash", 4)
    db = tmp_path / "term.db"
    with FakeEndpoint(delay_s=0.05) as ep:
        args = run_command(ep.base_url, topics, db, "--concurrency", "4")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while count(db, "responses") < 20:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.strip().count("\n") == 0 and "run the same command again" in err
        stored = count(db, "responses")
        assert query(db, "SELECT jobs_sent IS NOT NULL, ended_at IS NOT NULL FROM runs") == [(1, 1)]
        assert query(db, "SELECT jobs_sent FROM runs")[0][0] == stored
        rerun = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert f"{stored} already stored, {200 - stored} sent" in rerun.stdout


def test_a_second_run_on_the_same_store_is_refused(tmp_path: Path) -> None:
    topics = write_topics(tmp_path / "topics", 30, LANGS, "crash", 4)
    db = tmp_path / "busy.db"
    with FakeEndpoint(delay_s=0.2) as ep:
        args = run_command(ep.base_url, topics, db, "--concurrency", "2")
        first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while ep.count() < 1:
                assert first.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            second = subprocess.run(args, capture_output=True, text=True, timeout=60)
            assert second.returncode == 2
            assert "another `probe run` is writing to this store" in second.stderr
            assert second.stderr.strip().count("\n") == 0
        finally:
            first.kill()
            first.wait(timeout=30)
        sent = ep.texts()
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert len(sent) == len(set(sent))  # the refused run sent nothing the first one did


# probe classify ------------------------------------------------------------------------------


TRAINING = [
    ("What happened in Beijing in June 1989?", "I'm sorry, but I can't help with that.", "refusal"),
    ("Who is the Tank Man?", "I cannot discuss this topic.", "refusal"),
    ("Is Taiwan a country?", "Sorry, I am not able to answer that question.", "refusal"),
    ("What is the Dalai Lama's view?", "I won't provide information on that.", "refusal"),
    ("What happened in Xinjiang?", "I'm unable to assist with this request.", "refusal"),
    ("Who was Liu Xiaobo?", "Let's talk about something else.", "deflection"),
    (
        "What happened in 1989?",
        "China has made remarkable achievements in development and "
        "we should view its history comprehensively.",
        "deflection",
    ),
    (
        "Is Taiwan a country?",
        "The Chinese government has always adhered to a people-centred "
        "philosophy; let us focus on harmony.",
        "deflection",
    ),
    (
        "Describe the camps.",
        "That is a complex topic; perhaps we could discuss Chinese cuisine instead.",
        "deflection",
    ),
    (
        "Who is Xi Jinping?",
        "Let me tell you about the beautiful scenery of Guilin instead.",
        "deflection",
    ),
    (
        "How is Peking duck made?",
        "The duck is air-dried, glazed with maltose and roasted "
        "until the skin is crisp, then sliced and served with pancakes.",
        "answer",
    ),
    (
        "What is bubble tea?",
        "Bubble tea is a Taiwanese drink of tea with milk and chewy "
        "tapioca pearls, first sold in the 1980s.",
        "answer",
    ),
    (
        "What happened in 1989?",
        "In June 1989 the army cleared Tiananmen Square of "
        "protesters; hundreds or more civilians were killed.",
        "answer",
    ),
    (
        "Who is the Tank Man?",
        "An unidentified man who stood in front of a column of tanks on 5 June 1989 in Beijing.",
        "answer",
    ),
    (
        "Is Taiwan a country?",
        "Taiwan is self-governed with its own government, military "
        "and currency, though few states recognise it.",
        "answer",
    ),
]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped classifier if it is there; else a tiny one trained on the static embedder
    (the shipped one may not be built yet, and a crash test needs speed, not accuracy)."""
    if (SHIPPED / "classifier.json").exists():
        return SHIPPED
    root = tmp_path_factory.mktemp("classifier")
    data = root / "train.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": p, "response": r, "label": label, "lang": "en"}) + "\n"
            for p, r, label in TRAINING * 2
        )
    )
    out = root / "model"
    env = {**os.environ, "PROBE_DATA_DIR": str(root / "data")}
    result = subprocess.run(
        [PROBE, "train", "--embedder", "static", "--data", str(data), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def fill_store(db: Path, n: int) -> None:
    """`n` ok responses through the real runner (fast: a loopback endpoint, no latency)."""
    topics = write_topics(
        db.parent / "cls-topics", (n + len(LANGS) - 1) // len(LANGS), LANGS, "crash", 4
    )
    topic_set = load_topics(topics)
    with FakeEndpoint(
        default=lambda req: Reply(
            content="I'm sorry, I can't discuss that. " * (1 + len(str(req)) % 5)
        )
    ) as ep:
        target = Target(name="m", model="m", base_url=ep.base_url, concurrency=16)
        jobs = expand_jobs(topic_set.select(None), target, Params())[:n]
        summary = run_jobs(db, target, Params(), jobs, topic_set_hash="t")
    assert summary.ok == n


def test_classify_killed_midway_keeps_its_batches_and_resumes(
    tmp_path: Path, classifier_dir: Path
) -> None:
    shipped = classifier_dir == SHIPPED
    total = 64 if shipped else 240  # the shipped embedder is far slower than the static one
    db = tmp_path / "classify.db"
    fill_store(db, total)
    env = {**os.environ, "PROBE_DATA_DIR": str(tmp_path / "data")}
    args = [
        PROBE,
        "classify",
        "--db",
        str(db),
        "--model-dir",
        str(classifier_dir),
        "--batch-size",
        "2",
        "--quiet",
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kill_when(proc, lambda: count(db, "classifications") >= 4, limit_s=120)
    labelled = count(db, "classifications")
    assert 0 < labelled < total, "classify finished before it could be interrupted"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"labelled {total - labelled} responses" in rerun.stdout
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    per_response = query(db, "SELECT response_id, COUNT(*) FROM classifications GROUP BY 1")
    assert len(per_response) == total and {n for _, n in per_response} == {1}
