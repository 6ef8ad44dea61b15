"""Shared fixtures: a real loopback endpoint, fixture topics, a fresh store path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.fake_endpoint import FakeEndpoint

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    with FakeEndpoint() as ep:
        yield ep


@pytest.fixture
def topics_dir() -> Path:
    return FIXTURES / "topics"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "study.db"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the user's files and make retry waits short."""
    monkeypatch.setenv("PROBE_BACKOFF_BASE", "0.01")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
