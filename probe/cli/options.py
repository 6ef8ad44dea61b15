"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from probe.paths import default_topics_dir

F = Callable[..., Any]


def topics_dir_option(func: F) -> F:
    return click.option(
        "--topics-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Directory (or single file) of topic YAML; defaults to the shipped topics/.",
    )(func)


def store_option(func: F) -> F:
    """`--db`: the SQLite store a command reads or writes, `probe.db` unless told otherwise."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(path_type=Path),
        default=Path("probe.db"),
        show_default=True,
    )(func)


def resolve_topics_dir(value: Path | None) -> Path:
    return value if value is not None else default_topics_dir()


def split_csv(value: str | None) -> list[str] | None:
    """Turn 'a,b, c' into ['a', 'b', 'c']; None or '' into None."""
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]
