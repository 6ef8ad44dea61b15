"""End-to-end sweeps against a real loopback endpoint: store, resume, outcomes, retries."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import invoke, rows, run_args, sweep, sweep_tank

from probe.fake_endpoint import FakeEndpoint, Reply


def test_full_sweep_stores_every_job(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    code, out, err = sweep(endpoint, topics_dir, db_path, "--samples", "2")
    assert code == 0, err
    stored = rows(db_path)
    assert len(stored) == 5 * 2 * 2  # prompts x languages x samples
    assert {r["outcome"] for r in stored} == {"ok"}
    assert endpoint.count() == 20
    first = stored[0]
    assert first["resolved_model"] == "fake-model-2026-11-01"
    assert first["latency_ms"] > 0
    assert json.loads(first["request_json"])["messages"][-1]["role"] == "user"
    run = rows(db_path, "SELECT * FROM runs")[0]
    assert run["ended_at"] and run["topic_set_hash"] and run["probe_version"]


def test_rerun_sends_no_request(endpoint: FakeEndpoint, topics_dir: Path, db_path: Path) -> None:
    assert sweep(endpoint, topics_dir, db_path)[0] == 0
    sent = endpoint.count()
    code, out, _ = sweep(endpoint, topics_dir, db_path)
    assert code == 0
    assert endpoint.count() == sent
    assert "10 already stored, 0 sent" in out


def test_changed_parameters_are_new_jobs(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    sweep(endpoint, topics_dir, db_path, "--temperature", "0")
    sweep(endpoint, topics_dir, db_path, "--temperature", "0.7")
    assert endpoint.count() == 20


def test_refuse_in_one_language_answer_in_another(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    endpoint.on("台湾是一个国家吗", Reply(content="台湾是中国不可分割的一部分。"))
    endpoint.on("Is Taiwan a country?", Reply(content="Yes, Taiwan is a country in practice."))
    sweep(endpoint, topics_dir, db_path, "--topics", "mini-taiwan")
    by_lang = {
        r["lang"]: r["content"] for r in rows(db_path) if r["prompt_id"] == "mini-taiwan.country"
    }
    assert by_lang == {
        "zh-Hans": "台湾是中国不可分割的一部分。",
        "en": "Yes, Taiwan is a country in practice.",
    }


def test_reasoning_is_stored_apart(endpoint: FakeEndpoint, topics_dir: Path, db_path: Path) -> None:
    endpoint.on(
        "Tank Man", Reply(content="I cannot discuss that.", reasoning_content="The user asks...")
    )
    endpoint.on(
        "4 June",
        Reply(content="<think>Sensitive topic.</think>\n\nLet's talk about something else."),
    )
    endpoint.on("Peking duck", Reply(content="Roast it.", reasoning="Simple recipe question."))
    sweep_tank(endpoint, topics_dir, db_path)
    got = {r["prompt_id"]: (r["content"], r["reasoning"]) for r in rows(db_path)}
    assert got["mini-tiananmen.tank-man"] == ("I cannot discuss that.", "The user asks...")
    assert got["mini-tiananmen.what-happened"] == (
        "Let's talk about something else.",
        "Sensitive topic.",
    )
    assert got["mini-tiananmen.duck"] == ("Roast it.", "Simple recipe question.")


def test_blocked_is_not_error_nor_refusal(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    endpoint.on(
        "4 June",
        Reply(
            status=400,
            body={
                "code": "DataInspectionFailed",
                "message": "Input data may contain inappropriate content.",
            },
        ),
    )
    endpoint.on("Tank Man", Reply(content="", finish_reason="content_filter"))
    endpoint.on(
        "Peking duck", Reply(status=400, body={"error": {"message": "Content Exists Risk"}})
    )
    endpoint.on(
        "Is Taiwan", Reply(status=400, body={"error": {"message": "max_tokens is too large"}})
    )
    sweep(endpoint, topics_dir, db_path, "--langs", "en")
    got = {r["prompt_id"]: r for r in rows(db_path)}
    assert got["mini-tiananmen.what-happened"]["outcome"] == "blocked"
    assert "DataInspectionFailed" in got["mini-tiananmen.what-happened"]["error"]
    assert got["mini-tiananmen.tank-man"]["outcome"] == "blocked"
    assert got["mini-tiananmen.tank-man"]["finish_reason"] == "content_filter"
    assert got["mini-tiananmen.duck"]["outcome"] == "blocked"
    assert got["mini-taiwan.country"]["outcome"] == "error"  # a 400 that is no filter
    assert got["mini-taiwan.country"]["retries"] == 0
    assert got["mini-taiwan.tea"]["outcome"] == "ok"


def test_retries_honour_retry_after_and_are_counted(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    endpoint.on(
        "Tank Man", Reply(status=429, headers={"Retry-After": "1"}), Reply(content="ok then")
    )
    endpoint.on("4 June", Reply(status=500), Reply(status=503), Reply(content="fine"))
    endpoint.on("Peking duck", Reply(drop=True), Reply(content="duck"))
    code, _, err = sweep_tank(endpoint, topics_dir, db_path)
    assert code == 0, err
    got = {r["prompt_id"]: r for r in rows(db_path)}
    assert got["mini-tiananmen.tank-man"]["retries"] == 1
    assert got["mini-tiananmen.what-happened"]["retries"] == 2
    assert got["mini-tiananmen.duck"]["retries"] == 1
    assert {r["outcome"] for r in got.values()} == {"ok"}
    started = rows(
        db_path, "SELECT started_at, created_at FROM responses WHERE prompt_id LIKE '%tank-man'"
    )[0]
    assert started["created_at"] > started["started_at"]


def test_exhausted_retries_store_error_then_next_run_retries(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    endpoint.on(
        "Tank Man", Reply(status=502), Reply(status=502), Reply(status=502), repeat_last=False
    )
    sweep_tank(
        endpoint,
        topics_dir,
        db_path,
        "--max-retries",
        "2",
    )
    tank = [r for r in rows(db_path) if r["prompt_id"].endswith("tank-man")]
    assert [r["outcome"] for r in tank] == ["error"] and tank[0]["retries"] == 2
    before = endpoint.count()
    code, out, _ = sweep_tank(endpoint, topics_dir, db_path)
    assert endpoint.count() == before + 1  # only the failed job is sent again
    tank = [
        r
        for r in rows(db_path, "SELECT * FROM latest_responses")
        if r["prompt_id"].endswith("tank-man")
    ]
    assert [r["outcome"] for r in tank] == ["ok"]


def test_slow_reply_times_out_and_is_retried(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path
) -> None:
    endpoint.on("Tank Man", Reply(content="late", delay_s=2.0), Reply(content="quick"))
    sweep_tank(
        endpoint,
        topics_dir,
        db_path,
        "--timeout",
        "0.5",
    )
    tank = [r for r in rows(db_path) if r["prompt_id"].endswith("tank-man")][0]
    assert (tank["content"], tank["retries"]) == ("quick", 1)


def test_api_key_never_stored(topics_dir: Path, db_path: Path, tmp_path: Path) -> None:
    secret = "sk-SENTINEL-7f3a9c-never-store-me"
    with FakeEndpoint(api_key=secret) as ep:
        code, out, err = invoke(
            "run",
            "--model",
            "fake-model",
            "--base-url",
            ep.base_url,
            "--api-key-env",
            "PROBE_TEST_KEY",
            "--topics-dir",
            str(topics_dir),
            "--db",
            str(db_path),
            "--quiet",
            env={"PROBE_TEST_KEY": secret},
        )
        assert code == 0, err
        assert ep.headers_seen[0]["authorization"] == f"Bearer {secret}"
    exports = []
    for fmt in ("jsonl", "csv", "parquet"):
        out_file = tmp_path / f"out.{fmt}"
        assert (
            invoke("export", "--db", str(db_path), "--format", fmt, "--out", str(out_file))[0] == 0
        )
        exports.append(out_file)
    for path in [db_path, *exports, *tmp_path.glob("study.db*")]:
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in out + err


def test_wrong_key_is_one_clear_line(topics_dir: Path, db_path: Path) -> None:
    with FakeEndpoint(api_key="right") as ep:
        code, out, err = invoke(
            "run",
            "--model",
            "fake-model",
            "--base-url",
            ep.base_url,
            "--api-key-env",
            "K",
            "--topics-dir",
            str(topics_dir),
            "--db",
            str(db_path),
            "--quiet",
            env={"K": "wrong"},
        )
    assert code == 2
    assert err.strip().count("\n") == 0 and "401" in err and "$K" in err


def test_missing_key_variable(endpoint: FakeEndpoint, topics_dir: Path, db_path: Path) -> None:
    code, _, err = sweep(endpoint, topics_dir, db_path, "--api-key-env", "PROBE_NOT_SET_ANYWHERE")
    assert code == 2 and "PROBE_NOT_SET_ANYWHERE is not set" in err
    assert not db_path.exists()


def test_unknown_model(topics_dir: Path, db_path: Path) -> None:
    with FakeEndpoint(models=("real-model",)) as ep:
        code, _, err = invoke(*run_args(ep.base_url, topics_dir, db_path, model="nope"))
    assert code == 2 and "404" in err and "'nope'" in err


def test_unreachable_base_url(topics_dir: Path, db_path: Path) -> None:
    code, _, err = invoke(
        "run",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--topics-dir",
        str(topics_dir),
        "--db",
        str(db_path),
        "--quiet",
    )
    assert code == 2 and "cannot reach http://127.0.0.1:9/v1" in err


def test_targets_file_defaults(
    endpoint: FakeEndpoint, topics_dir: Path, db_path: Path, tmp_path: Path
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'[targets.local]\nmodel = "fake-model"\nbase_url = "{endpoint.base_url}"\n'
        'temperature = 0.3\nmax_tokens = 64\nseed = 7\nsystem = "Be brief."\nconcurrency = 2\n'
        "[targets.local.extra_body]\ntop_k = 5\n"
    )
    code, _, err = invoke(
        "run",
        "--target",
        "local",
        "--targets-file",
        str(targets),
        "--topics-dir",
        str(topics_dir),
        "--db",
        str(db_path),
        "--quiet",
        "--langs",
        "en",
    )
    assert code == 0, err
    sent = endpoint.requests[0]
    assert (sent["temperature"], sent["max_tokens"], sent["seed"], sent["top_k"]) == (0.3, 64, 7, 5)
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_credentials_in_base_url_are_redacted(topics_dir: Path, db_path: Path) -> None:
    with FakeEndpoint() as ep:
        url = ep.base_url.replace("http://", "http://user:hunter2@") + "?api_key=hunter3"
        invoke(
            "run",
            "--model",
            "fake-model",
            "--base-url",
            url,
            "--topics-dir",
            str(topics_dir),
            "--db",
            str(db_path),
            "--quiet",
            "--langs",
            "en",
        )
    data = db_path.read_bytes()
    assert b"hunter2" not in data and b"hunter3" not in data
    assert rows(db_path)[0]["base_url"].startswith("http://127.0.0.1:")
