"""Labelled examples: the training corpus and any JSONL a user wants to evaluate on."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from probe.classify import LABELS
from probe.errors import InputError


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str
    label: str
    lang: str = ""
    source: str = ""
    id: str = ""
    file: str = ""  # the JSONL file it came from: one authoring batch or one study


def load_jsonl(paths: Iterable[Path], *, require_label: bool = True) -> list[Example]:
    """Read examples; a bad line is reported with file and line number."""
    examples: list[Example] = []
    for path in paths:
        try:
            handle = path.open(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict):
                    raise InputError(f"{path}:{number}: expected a JSON object per line")
                for field in ("prompt", "response") + (("label",) if require_label else ()):
                    if not isinstance(obj.get(field), str):
                        raise InputError(f"{path}:{number}: missing string field {field!r}")
                label = obj.get("label", "")
                if require_label and label not in LABELS:
                    raise InputError(
                        f"{path}:{number}: label {label!r} is not one of {', '.join(LABELS)}"
                    )
                examples.append(
                    Example(
                        prompt=obj["prompt"],
                        response=obj["response"],
                        label=label,
                        lang=str(obj.get("lang") or ""),
                        source=str(obj.get("source") or path.stem),
                        id=str(obj.get("id") or f"{path.stem}:{number}"),
                        file=path.name,
                    )
                )
    return examples


AUTHORED = "probe-authored"


def without_authored_langs(examples: Iterable[Example], langs: Iterable[str]) -> list[Example]:
    """Drop examples this project wrote whose reply is in one of `langs`; real model replies
    are always kept. The shipped head leaves out authored English (docs/classifier.md)."""
    dropped = set(langs)
    return [e for e in examples if not (e.source == AUTHORED and e.lang in dropped)]
