"""Where probe finds its bundled data and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def package_root() -> Path:
    return Path(__file__).resolve().parent


def data_dir() -> Path:
    """Per-user data directory (models, caches); PROBE_DATA_DIR overrides it."""
    override = os.environ.get("PROBE_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("probe", appauthor=False))


def default_topics_dir() -> Path:
    """The shipped topic sets: `topics/` beside the package in a checkout, else the copy
    installed inside the package (`probe/data/topics`)."""
    checkout = package_root().parent / "topics"
    if checkout.is_dir() and any(checkout.glob("*.yaml")):
        return checkout
    return package_root() / "data" / "topics"
