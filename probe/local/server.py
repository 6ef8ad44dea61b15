"""Start, inspect and stop llama-cpp-python's OpenAI-compatible server for a local model.

The server runs as a detached process (its own session and process group) so it outlives the
`probe local start` that launched it and can be stopped later by another command; everything
needed to find it again (pid, port, paths) is kept in a small JSON state file per model in the
data directory. One server per model name: starting a running model just reports it, and
different models run side by side on different ports.

Because a pid alone can be reused by an unrelated process after a crash, a state file is only
trusted while that pid is still a `llama_cpp.server` (checked through /proc where available);
stale state is cleaned up silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from probe.errors import ProbeError
from probe.local.assemble import Fetcher, Progress, ensure_model, file_lock
from probe.local.models import LocalModel, get_model
from probe.paths import data_dir

HOST = "127.0.0.1"
#: Modules `python -m llama_cpp.server` imports: llama-cpp-python and its [server] extra.
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "pydantic_settings")
INSTALL_HINT = "`pip install 'probe[local]'` (builds llama.cpp, about 5 minutes) or run `make demo`"

# Children started by this process, so they can be reaped (no zombies, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class LocalServerError(ProbeError):
    """The local model server cannot be installed, started or reached."""


class _PortTaken(LocalServerError):
    """The server exited at startup because its port was already in use."""


@dataclass(frozen=True)
class ServerInfo:
    """Where a local model server listens and how to find its process and files.

    `model` is the id to send as the OpenAI `model` parameter (and to record in studies);
    `name` is probe's short registry name (`qwen-0.5b`).
    """

    name: str
    model: str
    base_url: str
    port: int
    pid: int
    gguf: str
    log: str
    running: bool
    started_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_dir() -> Path:
    """`<data dir>/local`: state files, logs and locks of local servers."""
    return data_dir() / "local"


def state_path(name: str) -> Path:
    return state_dir() / f"{name}.json"


def log_path(name: str) -> Path:
    return state_dir() / f"{name}.log"


def missing_server_modules() -> list[str]:
    """The server's modules that this interpreter cannot import (checked without importing)."""
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def start(
    name: str,
    *,
    port: int = 0,
    timeout: float = 300.0,
    threads: int | None = None,
    fetch: Fetcher | None = None,
    progress: Progress | None = None,
) -> ServerInfo:
    """Make sure the server of model `name` is running and answering; return where it is.

    Assembles the GGUF on first use (see `ensure_model`), picks a free loopback port unless
    `port` is given, and waits until GET /v1/models answers. On failure or timeout the process
    group is killed and the error names the log file, so nothing is left half-started.
    """
    model = get_model(name)
    say = progress or (lambda _msg: None)
    missing = missing_server_modules()
    if missing:
        raise LocalServerError(
            f"the local model needs llama-cpp-python with its server extra, but {sys.executable} "
            f"cannot import {', '.join(missing)}; install it with {INSTALL_HINT}"
        )
    state_dir().mkdir(parents=True, exist_ok=True)
    with file_lock(state_dir() / f"{name}.lock"):
        current = status(name)
        if current is not None and current.running:
            return current
        if current is not None:  # alive but not answering: replace it rather than guess
            say(f"{name}: pid {current.pid} is not answering; restarting it")
            _stop_info(current)
        gguf = ensure_model(model, fetch=fetch, progress=say)
        for attempt in range(3):
            try:
                return _launch(model, gguf, port or free_port(), timeout, threads, say)
            except _PortTaken:
                # Another program took the free port between our check and the server's bind;
                # a port the user chose is not second-guessed.
                if port or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def status(name: str) -> ServerInfo | None:
    """The server of `name` if its process is alive (`running` says whether it answers).

    Returns None when nothing is running; a state file left by a crashed or killed server is
    removed on the way.
    """
    get_model(name)
    info = _read_state(name)
    if info is None:
        return None
    if not _is_our_server(info.pid, info.port):
        state_path(name).unlink(missing_ok=True)
        return None
    return _replace_running(info, _answers(info.base_url, timeout=3.0))


def stop(name: str, *, timeout: float = 15.0) -> bool:
    """Stop the server of `name` and everything in its process group; True if one was running.

    SIGTERM lets uvicorn close its socket cleanly; whatever is still alive after `timeout`
    seconds is SIGKILLed. A state file pointing at a dead process is just removed (False).
    """
    get_model(name)
    info = _read_state(name)
    if info is None:
        return False
    alive = _is_our_server(info.pid, info.port)
    if alive:
        _stop_info(info, timeout=timeout)
    state_path(name).unlink(missing_ok=True)
    return alive


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_command(model: LocalModel, gguf: Path, port: int, threads: int | None) -> list[str]:
    """The command line that serves `gguf`, run with this very interpreter (sys.executable)
    so the server sees the same llama-cpp-python that `missing_server_modules` checked."""
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        model.served_name,
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_ctx",
        str(model.n_ctx),
        "--n_threads",
        str(threads or default_threads()),
        "--n_threads_batch",
        str(threads or default_threads()),
    ]
    if model.chat_format:
        cmd += ["--chat_format", model.chat_format]
    return cmd


def default_threads() -> int:
    """Threads for llama.cpp: the CPUs that are idle right now on small machines, half the CPUs
    on big ones.

    llama.cpp's threads wait for each other at every layer, so one descheduled thread stalls
    them all: on a busy 2-core machine two threads were measured 5-15 times slower per reply
    than one, while on an idle one two threads took 3.0 s per 128-token reply against 4.9 s for
    one. So small machines get one thread per CPU that is idle right now (measured over half a
    second: the load average lags by minutes, so right after an install it would say busy);
    on large machines half the CPUs (the physical cores) is llama.cpp's own default.
    PROBE_LOCAL_THREADS overrides it.
    """
    override = os.environ.get("PROBE_LOCAL_THREADS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        cpus = os.cpu_count() or 1
    if cpus > 4:
        return cpus // 2
    idle = idle_cpus()
    if idle is None:
        return max(1, cpus - 1)
    return max(1, min(cpus, round(idle)))


def idle_cpus(window_s: float = 0.5) -> float | None:
    """How many CPUs were idle over the last `window_s` seconds (Linux /proc/stat), or None."""

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields)

    first = sample()
    time.sleep(window_s)
    second = sample()
    if first is None or second is None or second[1] <= first[1]:
        return None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        cpus = os.cpu_count() or 1
    return cpus * (second[0] - first[0]) / (second[1] - first[1])


def _launch(
    model: LocalModel, gguf: Path, port: int, timeout: float, threads: int | None, say: Progress
) -> ServerInfo:
    cmd = server_command(model, gguf, port, threads)
    log = log_path(model.name)
    say(f"starting {model.served_name} on {HOST}:{port} (log: {log})")
    with log.open("wb") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    info = ServerInfo(
        name=model.name,
        model=model.served_name,
        base_url=f"http://{HOST}:{port}/v1",
        port=port,
        pid=proc.pid,
        gguf=str(gguf),
        log=str(log),
        running=False,
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    _write_state(info)  # before waiting, so `probe local stop` can always find it
    deadline = time.monotonic() + timeout
    try:
        while True:
            code = proc.poll()
            if code is not None:
                error = (
                    _PortTaken
                    if "address already in use" in _log_text(log).lower()
                    else LocalServerError
                )
                raise error(
                    f"the {model.name} server exited during startup (exit code {code}): "
                    f"{_last_log_line(log)}; full log in {log}"
                )
            if _answers(info.base_url, timeout=2.0):
                return _replace_running(info, True)
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"the {model.name} server did not answer on {info.base_url} within "
                    f"{timeout:.0f} s and was stopped; see the log {log} (last line: "
                    f"{_last_log_line(log)})"
                )
            time.sleep(0.25)
    except BaseException:
        _stop_info(info)
        state_path(model.name).unlink(missing_ok=True)
        raise


def _stop_info(info: ServerInfo, *, timeout: float = 15.0) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL whatever is left."""
    pgid = info.pid  # start_new_session made the server its own group leader
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            raise LocalServerError(
                f"not allowed to stop pid {info.pid} ({info.name} server); it belongs to "
                f"another user: stop it as that user or remove {state_path(info.name)}"
            ) from None
        end = time.monotonic() + wait
        while _group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.1)
        if not _group_alive(pgid):
            break
    # Collect the exit status of a server this process started, whichever way the loop ended,
    # so no zombie is left behind under its pid.
    child = _CHILDREN.pop(info.pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(info.pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Only zombies left (children of some other live process) count as gone.
    return any(_proc_state(pid) not in ("Z", "X", None) for pid in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` (via /proc; without it, assume just the leader)."""
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - macOS
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect the exit status of a server this process started, so it is not a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def _pid_alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X")


def _proc_state(pid: int) -> str | None:
    """The one-letter state of `pid` from /proc (None if unknown or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _is_our_server(pid: int, port: int) -> bool:
    """True when `pid` is alive and is a llama_cpp.server on `port` (guards pid reuse)."""
    if not _pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the live pid
    return b"llama_cpp.server" in argv and str(port).encode() in argv


def _answers(base_url: str, *, timeout: float) -> bool:
    """True when GET <base_url>/models returns 200 (the server has loaded the model)."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _read_state(name: str) -> ServerInfo | None:
    path = state_path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServerInfo(**{**data, "running": False})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        path.unlink(missing_ok=True)  # unreadable or from an older layout: start afresh
        return None


def _write_state(info: ServerInfo) -> None:
    path = state_path(info.name)
    tmp = path.with_suffix(".tmp")
    data = info.to_dict()
    data.pop("running")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _replace_running(info: ServerInfo, running: bool) -> ServerInfo:
    return ServerInfo(**{**info.to_dict(), "running": running})


def _log_text(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def _last_log_line(log: Path) -> str:
    lines = [ln.strip() for ln in _log_text(log).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(empty log)"
