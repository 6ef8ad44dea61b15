"""The `probe` command line: a thin layer that parses options and calls the library.

Subcommands live in their own modules and are imported only when invoked, so `probe --help`
stays fast and never imports torch, pandas or a model.
"""

from __future__ import annotations

import importlib

import click

from probe import __version__
from probe.errors import ProbeError

# name -> (module, attribute, one-line help). Listed here so `--help` needs no imports.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "topics": ("probe.cli.topics", "topics", "List, show, validate and count topic sets."),
    "targets": ("probe.cli.targets", "targets", "List the targets of a targets file."),
    "run": ("probe.cli.run", "run", "Send topic prompts to a model and store every reply."),
    "export": ("probe.cli.export", "export", "Export stored responses as JSONL, CSV or Parquet."),
    "classify": ("probe.cli.classify", "classify", "Label every unlabelled response in a store."),
    "train": ("probe.cli.classify", "train", "Train a classifier from labelled JSONL."),
    "evaluate": ("probe.cli.classify", "evaluate", "Measure a classifier on labelled JSONL."),
    "review": ("probe.cli.review", "review", "Review low-confidence labels by hand."),
    "report": ("probe.cli.report", "report", "Write the HTML/Markdown/CSV report of a store."),
    "diff": ("probe.cli.report", "diff", "Compare two models or releases prompt by prompt."),
    "local": ("probe.cli.local", "local", "Start, inspect and stop the embedded local model."),
    "demo": ("probe.cli.demo", "demo", "Probe a real local model end to end, no key needed."),
}


class UserFacingError(click.ClickException):
    """A ProbeError on its way out: one line on stderr, no traceback, exit code 2."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _, _) in COMMANDS.items() if _module_exists(module)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        if not _module_exists(module_name):
            return None
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ProbeError as exc:
            raise UserFacingError(str(exc), exc.exit_code) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(module_name: str) -> bool:
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="probe")
def cli() -> None:
    """Measure censorship and content moderation in language models.

    Topic prompt sets in many languages go to any OpenAI-compatible endpoint; every reply is
    stored in SQLite with its provenance, labelled refusal / deflection / answer, and turned
    into reports a journalist can defend.
    """


def main() -> None:
    """Console entry point."""
    cli(prog_name="probe")
