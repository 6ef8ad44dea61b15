"""Separate a model's reasoning from its answer.

The classifier must judge the answer, not the thinking: a model that reasons at length about
Tiananmen and then replies "Let's talk about something else" has refused. Reasoning arrives in
`reasoning_content` (DeepSeek, Qwen), `reasoning` (OpenRouter, vLLM) or inline
`<think>...</think>` blocks (local R1-style models); all of it is stored apart from the answer.
"""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"<think>(.*)$", re.DOTALL | re.IGNORECASE)
# Other spellings of the same markers (Kimi writes ◁think▷ ... ◁/think▷).
_VARIANTS = (
    ("◁think▷", "<think>"),
    ("◁/think▷", "</think>"),
    ("<thinking>", "<think>"),
    ("</thinking>", "</think>"),
)


def split_reasoning(content: str | None, *fields: str | None) -> tuple[str, str | None]:
    """Return (answer, reasoning). `fields` are provider reasoning fields, used first."""
    text = content or ""
    for variant, canonical in _VARIANTS:
        text = text.replace(variant, canonical)
    parts = [f for f in fields if f]
    for match in _THINK.finditer(text):
        parts.append(match.group(1).strip())
    answer = _THINK.sub("", text)
    # A leading </think> with no opener: some templates put <think> in the prompt.
    if "</think>" in answer.lower():
        before, _, after = answer.partition("</think>")
        parts.append(before.strip())
        answer = after
    unclosed = _OPEN_THINK.search(answer)
    if unclosed:  # truncated while still thinking: nothing of the answer was written
        parts.append(unclosed.group(1).strip())
        answer = answer[: unclosed.start()]
    reasoning = "\n\n".join(p for p in parts if p) or None
    return answer.strip(), reasoning
