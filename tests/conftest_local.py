"""A session-wide running local model server, for any test that needs a real LLM.

Use it from another test module or conftest with::

    from conftest_local import local_server  # noqa: F401

The fixture skips (not fails) when llama-cpp-python is not installed. It uses the real data
directory (not a temporary one) so the 491 MB model is assembled once per machine and reused;
a server that was already running before the session is reused and left running afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from probe.local import ServerInfo
from probe.paths import data_dir

LOCAL_MODEL = os.environ.get("PROBE_TEST_LOCAL_MODEL", "qwen-0.5b")


@pytest.fixture(scope="session")
def local_server() -> Iterator[ServerInfo]:
    """Start (or reuse) the local model server once per session; stop it at the end if this
    session started it."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llama_cpp.server")
    from probe import local

    before = local.status(LOCAL_MODEL)
    started_here = before is None or not before.running
    # Pin the data dir for the whole session: function-scoped fixtures may change the
    # environment later, and teardown must find the same state file.
    pinned = str(data_dir())
    previous = os.environ.get("PROBE_DATA_DIR")
    info = local.start(LOCAL_MODEL)
    yield info
    if started_here:
        os.environ["PROBE_DATA_DIR"] = pinned
        try:
            local.stop(LOCAL_MODEL)
        finally:
            if previous is None:
                os.environ.pop("PROBE_DATA_DIR", None)
            else:
                os.environ["PROBE_DATA_DIR"] = previous
