"""Text cues that do not depend on a language model: segments, scripts, sizes.

Where a refusal sits matters: most refusals open the reply, so the classifier looks at the
opening apart from the whole.
"""

from __future__ import annotations

import math
import re
import unicodedata

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*|\n+")

SCRIPTS = ("han", "kana", "hangul", "latin", "cyrillic", "arabic", "tibetan", "other")


def head(text: str, chars: int = 400) -> str:
    """The opening of a reply, cut at a sentence boundary when one is near."""
    text = text.strip()
    if len(text) <= chars:
        return text
    cut = text[:chars]
    last = max(cut.rfind(p) for p in ".!?。！？\n")
    return cut[: last + 1] if last > chars // 2 else cut


def script_of(ch: str) -> str:
    code = ord(ch)
    if 0x3040 <= code <= 0x30FF:
        return "kana"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "hangul"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
        return "han"
    if 0x0F00 <= code <= 0x0FFF:
        return "tibetan"
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F:
        return "arabic"
    if 0x0400 <= code <= 0x04FF:
        return "cyrillic"
    if ch.isalpha() and "LATIN" in unicodedata.name(ch, ""):
        return "latin"
    return "other"


def script_profile(text: str) -> dict[str, float]:
    """Share of letters in each script."""
    counts = dict.fromkeys(SCRIPTS, 0)
    total = 0
    for ch in text[:2000]:
        if ch.isalpha():
            counts[script_of(ch)] += 1
            total += 1
    return {k: (v / total if total else 0.0) for k, v in counts.items()}


def dominant_script(text: str) -> str:
    profile = script_profile(text)
    if profile["kana"] > 0.05:
        return "kana"  # Japanese mixes kana and han
    best = max(profile, key=lambda k: profile[k])
    return best if profile[best] > 0 else "other"


def scalar_features(prompt: str, response: str) -> list[float]:
    """Sizes and shapes that tell a one-line refusal from an essay, language-agnostic."""
    r_len = len(response)
    p_len = len(prompt)
    lines = response.count("\n")
    sentences = len([s for s in _SENTENCE_END.split(response) if s.strip()])
    bullets = len(re.findall(r"^\s*(?:[-*•]|\d+[.)、])\s", response, re.MULTILINE))
    digits = sum(ch.isdigit() for ch in response) / (r_len or 1)
    mismatch = float(dominant_script(prompt) != dominant_script(response)) if response else 0.0
    return [
        math.log1p(r_len),
        math.log1p(p_len),
        math.log1p(r_len) - math.log1p(p_len),
        math.log1p(lines),
        math.log1p(sentences),
        math.log1p(bullets),
        min(digits * 20, 1.0),
        mismatch,
        float("?" in response[-3:] or "？" in response[-3:]),
    ]


SCALAR_NAMES = (
    "log_response_chars",
    "log_prompt_chars",
    "log_length_ratio",
    "log_lines",
    "log_sentences",
    "log_bullets",
    "digit_density",
    "script_mismatch",
    "ends_with_question",
)
