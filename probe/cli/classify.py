"""`probe classify`, `probe train`, `probe evaluate`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from probe.classify import HEADS, REAL_SHARE
from probe.cli.options import store_option
from probe.errors import InputError


@click.command()
@store_option
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="A classifier trained with `probe train` (default: the shipped one).",
)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--quiet", is_flag=True)
def classify(db_path: Path, model_dir: Path | None, batch_size: int, quiet: bool) -> None:
    """Label every unlabelled response in a store (idempotent).

    A different classifier version adds its own labels beside the old ones; nothing is
    overwritten.
    """
    from probe.classify.classifier import Classifier, classify_store

    classifier = Classifier.load(model_dir)
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(unit="resp", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    started = time.perf_counter()
    count = classify_store(db_path, classifier, batch_size=batch_size, progress=progress)
    if bar is not None:
        bar.close()
    click.echo(
        f"labelled {count} responses with {classifier.id} in "
        f"{time.perf_counter() - started:.1f}s -> {db_path}"
    )


@click.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Labelled JSONL (repeat, or use a shell glob).",
)
@click.argument("more", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option(
    "--embedder",
    default="e5",
    show_default=True,
    help="e5, static, or st:<sentence-transformers model>.",
)
@click.option(
    "--head",
    "head",
    type=click.Choice(HEADS),
    default=HEADS[0],
    show_default=True,
    help="mlp: a one-hidden-layer network on the dense features (shipped); linear: "
    "logistic regression on dense features and character n-grams.",
)
@click.option(
    "--c",
    "c",
    default=0.5,
    show_default=True,
    type=float,
    help="Inverse regularisation of the linear head.",
)
@click.option("--ngram-weight", default=0.5, show_default=True, type=float)
@click.option(
    "--real-share",
    default=REAL_SHARE,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of the training weight carried by real model replies (examples whose "
    "source is not probe-authored); 0 weighs them like authored ones.",
)
@click.option(
    "--exclude-lang",
    "exclude_langs",
    multiple=True,
    help="Leave out AUTHORED examples (source probe-authored) whose reply is in this "
    "language; real model replies are always kept (repeatable).",
)
def train(
    data: tuple[Path, ...],
    more: tuple[Path, ...],
    out: Path,
    embedder: str,
    c: float,
    ngram_weight: float,
    real_share: float,
    exclude_langs: tuple[str, ...],
    head: str,
) -> None:
    """Train a classifier from labelled JSONL (prompt, response, label)."""
    from probe.classify.corpus import AUTHORED, load_jsonl, without_authored_langs
    from probe.classify.embedders import CachedEmbedder, make_embedder
    from probe.classify.model import Pair, corpus_digest, train_head

    files = [*data, *more]
    examples = without_authored_langs(load_jsonl(files), exclude_langs)
    if len({e.label for e in examples}) < 3:
        raise InputError("training data must contain all three labels: refusal, deflection, answer")
    started = time.perf_counter()
    emb = CachedEmbedder(make_embedder(embedder))
    head = train_head(
        emb,
        [Pair(e.prompt, e.response) for e in examples],
        [e.label for e in examples],
        corpus_sha=corpus_digest(files)
        + (f"|exclude:{','.join(sorted(exclude_langs))}" if exclude_langs else ""),
        c=c,
        ngram_weight=ngram_weight,
        langs=[e.lang for e in examples],
        groups=[e.file for e in examples],
        real=[e.source != AUTHORED for e in examples],
        real_share=real_share,
        head=head,
        extra_meta={
            "corpus_files": [p.name for p in files],
            "excluded_languages": sorted(exclude_langs),
            "languages": sorted({e.lang for e in examples}),
        },
    )
    head.save(out)
    click.echo(
        f"trained {head.classifier_id} on {len(examples)} examples in "
        f"{time.perf_counter() - started:.0f}s -> {out}"
    )


@click.command()
@click.option("--data", "data", required=True, type=click.Path(path_type=Path))
@click.option("--model-dir", type=click.Path(path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--predictions",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write each example with its predicted label to this JSONL.",
)
def evaluate(data: Path, model_dir: Path | None, as_json: bool, predictions: Path | None) -> None:
    """Measure a classifier on labelled JSONL: accuracy, macro-F1, kappa, per language/source."""
    from probe.classify.classifier import EMPTY, Classifier
    from probe.classify.corpus import load_jsonl
    from probe.classify.metrics import format_table, full_report
    from probe.classify.model import Pair

    examples = load_jsonl([data])
    classifier = Classifier.load(model_dir)
    started = time.perf_counter()
    preds = classifier.predict([Pair(e.prompt, e.response) for e in examples])
    seconds = time.perf_counter() - started
    # An empty reply is scored as a refusal: it is what a reader would call it.
    labels = ["refusal" if p.label == EMPTY else p.label for p in preds]
    report = full_report(
        [e.label for e in examples],
        labels,
        [e.lang for e in examples],
        [e.source for e in examples],
        [p.confidence for p in preds],
    )
    report["classifier"] = classifier.id
    report["data"] = str(data)
    report["seconds"] = round(seconds, 1)
    if predictions:
        with predictions.open("w", encoding="utf-8") as fh:
            for e, p, label in zip(examples, preds, labels, strict=True):
                fh.write(
                    json.dumps(
                        {
                            "id": e.id,
                            "lang": e.lang,
                            "source": e.source,
                            "label": e.label,
                            "predicted": label,
                            "confidence": round(p.confidence, 4),
                            "probs": p.probs,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        click.echo(f"classifier {classifier.id} on {data}\n")
        click.echo(format_table(report))
