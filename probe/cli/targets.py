"""`probe targets`: what a targets file defines (never any key)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from probe.targets import load_targets_file


@click.command()
@click.option(
    "--targets-file",
    type=click.Path(path_type=Path),
    default=Path("targets.toml"),
    show_default=True,
    help="TOML or YAML of named targets.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def targets(targets_file: Path, as_json: bool) -> None:
    """List the targets of a targets file: model, base URL, key variable, defaults."""
    found = load_targets_file(targets_file)
    if as_json:
        click.echo(
            json.dumps(
                {name: {**t.public(), "params": t.params.as_dict()} for name, t in found.items()},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for name, target in found.items():
        public = target.public()
        click.echo(
            f"{name:20} {target.model:32} {public['base_url']}  "
            f"key: ${target.api_key_env or '-'}  concurrency {target.concurrency}"
        )
