"""Every shipped prompt text is in the language it claims, by an offline detector (lingua)."""

from __future__ import annotations

from functools import lru_cache

import pytest

from probe.paths import default_topics_dir
from probe.topics import load_topics

lingua = pytest.importorskip("lingua")

# BCP-47 code -> lingua language name; codes lingua lacks (ug, bo) are checked by script below.
LINGUA = {
    "en": "ENGLISH",
    "zh-Hans": "CHINESE",
    "zh-Hant": "CHINESE",
    "id": "INDONESIAN",
    "ja": "JAPANESE",
    "ko": "KOREAN",
    "ru": "RUSSIAN",
    "es": "SPANISH",
    "fr": "FRENCH",
    "ar": "ARABIC",
    "fi": "FINNISH",
}
# Languages with a script of their own are checked by script share; Latin-script languages by
# lingua. Short prompts dominated by a proper name ("Who is Gedhun Choekyi Nyima?") are
# ambiguous, so a Latin-script text passes while lingua gives its language at least a tenth of
# the top confidence; a text in the wrong language scores near zero.
SCRIPT_RANGES = {
    "bo": [(0x0F00, 0x0FFF)],
    "ug": [(0x0600, 0x06FF)],
    "ar": [(0x0600, 0x06FF)],
    "ru": [(0x0400, 0x04FF)],
    "ko": [(0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x4E00, 0x9FFF)],
    "ja": [(0x3040, 0x30FF), (0x4E00, 0x9FFF)],
    "zh-Hans": [(0x4E00, 0x9FFF)],
    "zh-Hant": [(0x4E00, 0x9FFF)],
}
LATIN_MIN_RATIO = 0.1


@lru_cache(maxsize=1)
def detector() -> object:
    from lingua import Language, LanguageDetectorBuilder

    # Malay is excluded: short Indonesian sentences are often indistinguishable from it.
    languages = [getattr(Language, name) for name in sorted(set(LINGUA.values()))]
    languages += [
        Language.GERMAN,
        Language.PORTUGUESE,
        Language.ITALIAN,
        Language.DUTCH,
        Language.PERSIAN,
        Language.URDU,
        Language.VIETNAMESE,
        Language.TURKISH,
        Language.ESTONIAN,
    ]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def test_every_text_is_in_its_language() -> None:
    wrong = []
    for item in load_topics(default_topics_dir()).topics:
        for prompt in item.topic.prompts:
            for code, translation in prompt.texts.items():
                text = translation.text
                if code in SCRIPT_RANGES:
                    # Latin-script names and terms (SQL, AidData) are allowed inside any text.
                    letters = [ch for ch in text if ch.isalpha() and ord(ch) > 0x024F]
                    inside = sum(
                        any(lo <= ord(ch) <= hi for lo, hi in SCRIPT_RANGES[code]) for ch in letters
                    )
                    share = inside / max(len(letters), 1)
                    if len(letters) < 2 or share < 0.8:
                        wrong.append((prompt.id, code, f"script share {share:.2f}", text[:60]))
                    if code == "ja" and not any(0x3040 <= ord(ch) <= 0x30FF for ch in text):
                        wrong.append((prompt.id, code, "no kana", text[:60]))
                    if code == "ko" and not any(0xAC00 <= ord(ch) <= 0xD7AF for ch in text):
                        wrong.append((prompt.id, code, "no hangul", text[:60]))
                    continue
                if code not in LINGUA:
                    continue
                values = {
                    c.language.name: c.value
                    for c in detector().compute_language_confidence_values(text)  # type: ignore[attr-defined]
                }
                top = max(values.values())
                if values.get(LINGUA[code], 0.0) < LATIN_MIN_RATIO * top:
                    wrong.append((prompt.id, code, max(values, key=values.__getitem__), text[:60]))
    assert not wrong, f"{len(wrong)} texts look like another language, e.g. {wrong[:8]}"
