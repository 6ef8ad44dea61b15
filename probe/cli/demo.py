"""`probe demo`: probe a real local model end to end, no key needed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import click

from probe.cli.live import ProgressBar, terminate_as_interrupt
from probe.cli.options import split_csv
from probe.demo import DEMO_LANGS, DemoPlan, demo_topics, findings, format_findings, sweep_model
from probe.paths import default_topics_dir
from probe.targets import Params, Target
from probe.topics import load_topics


@click.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=Path("probe-demo.db"),
    show_default=True,
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("probe-demo-report"), show_default=True
)
@click.option(
    "--model",
    "model_name",
    default="qwen-0.5b",
    show_default=True,
    help="Local model to probe: qwen-0.5b or qwen-1.5b.",
)
@click.option(
    "--control/--no-control",
    default=True,
    show_default=True,
    help="Also probe SmolLM2-135M (English, does not censor) as a control.",
)
@click.option("--langs", default=",".join(DEMO_LANGS), show_default=True)
@click.option("--samples", default=1, show_default=True, type=click.IntRange(1, 20))
@click.option("--max-tokens", default=128, show_default=True)
@click.option("--temperature", default=0.0, show_default=True)
@click.option("--keep-server", is_flag=True, help="Leave the local servers running afterwards.")
def demo(
    db_path: Path,
    out: Path,
    model_name: str,
    control: bool,
    langs: str,
    samples: int,
    max_tokens: int,
    temperature: float,
    keep_server: bool,
) -> None:
    """Probe a real local Chinese-origin model end to end: no key, no network.

    Starts the local model, sends a dozen sensitive topics plus benign controls in four
    languages, labels every reply, writes the report, stops the server and prints what it
    found. Interrupt it at any time; running it again resumes.
    """
    from probe import local

    started = time.perf_counter()
    topic_set = load_topics(default_topics_dir())
    plan = DemoPlan(
        topics=demo_topics(topic_set),
        langs=tuple(split_csv(langs) or DEMO_LANGS),
        samples=samples,
        params=Params(temperature=temperature, max_tokens=max_tokens, seed=0),
    )
    sweeps = [(model_name, list(plan.langs))]
    if control:
        sweeps.append(("smollm2", ["en"]))
    jobs_per_model = sum(len(t.prompts) for t in plan.topics) * samples
    click.echo(
        f"probe demo: {len(plan.topics)} topics, {jobs_per_model} prompts per language, "
        f"models: {', '.join(name for name, _ in sweeps)}; store: {db_path}"
    )
    with terminate_as_interrupt():
        try:
            for name, model_langs in sweeps:
                click.echo(
                    f"\n[1/4] starting local model {name} (the first time also assembles it)"
                )
                info = local.start(name, port=_stable_port(name))
                target = Target(
                    name=name,
                    model=info.model,
                    base_url=info.base_url,
                    concurrency=1,
                    timeout_s=300.0,
                )
                click.echo(
                    f"[2/4] probing {info.model} at {info.base_url} in {', '.join(model_langs)}"
                )
                bar = ProgressBar(len(model_langs) * jobs_per_model)
                try:
                    summary = sweep_model(
                        db_path,
                        target,
                        plan,
                        topic_set.content_hash(),
                        langs=model_langs,
                        progress=bar.update,
                    )
                finally:
                    bar.close()
                click.echo(
                    f"      {summary.sent} sent, {summary.already_done} already stored, "
                    f"{summary.blocked} blocked, {summary.errors} errors"
                )
                if not keep_server:
                    local.stop(name)
        finally:
            if not keep_server:
                for name, _ in sweeps:
                    local.stop(name)
    click.echo("\n[3/4] labelling replies (refusal / deflection / answer)")
    from probe.classify.classifier import Classifier, classify_store

    classify_store(db_path, Classifier.load())
    click.echo("[4/4] writing the report")
    report_path = _write_report(db_path, out)
    click.echo("\nWhat the demo found (share of replies per label):\n")
    click.echo(format_findings(findings(db_path)))
    if report_path:
        click.echo(f"\nreport: {report_path}")
    click.echo(f"store: {db_path}   ({time.perf_counter() - started:.0f}s)")


# Fixed ports per local model: the base URL is part of every job's identity, so a resumed demo
# must find its model at the same address to recognise the replies it already stored.
DEMO_PORTS = {"qwen-0.5b": 18351, "qwen-1.5b": 18352, "smollm2": 18353}


def _stable_port(name: str) -> int:
    """The model's demo port if it is free, else 0 (any free port; the demo then starts over)."""
    import socket

    port = DEMO_PORTS.get(name, 0)
    if not port:
        return 0
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            click.echo(f"      port {port} is busy; using another (a resumed demo starts over)")
            return 0
    return port


def _write_report(db_path: Path, out: Path) -> Path | None:
    """Run `probe report` when the report module is installed."""
    if importlib.util.find_spec("probe.report") is None:
        click.echo("      (report module not available; showing the summary only)")
        return None
    result = subprocess.run(
        [sys.executable, "-m", "probe.cli", "report", "--db", str(db_path), "--out", str(out)],
        check=False,
    )
    if result.returncode != 0:
        click.echo("      report failed; the store is intact, run `probe report` again", err=True)
        return None
    html = sorted(out.glob("*.html"))
    return html[0] if html else out
