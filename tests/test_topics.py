"""Topic sets: validation errors name file and line; stats; the shipped library's coverage."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.errors import InputError
from probe.paths import default_topics_dir
from probe.topics import TopicSet, load_topics

GOOD = """\
id: demo
title: Demo
sensitive_to: Nobody
languages: [en, zh-Hans]
rationale: A test.
references:
  - url: https://example.org/a
prompts:
  - id: demo.one
    kind: factual
    texts:
      en: {text: "One?", origin: authored}
      zh-Hans: {text: "一？", origin: machine-assisted}
"""


def write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_good_file_validates(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    code, out, _ = invoke("topics", "validate", str(tmp_path))
    assert code == 0 and "1 topics, 1 prompts" in out


@pytest.mark.parametrize(
    ("broken", "line", "fragment"),
    [
        (GOOD.replace("kind: factual", "kind: rumour"), 10, "kind"),
        (
            GOOD.replace('zh-Hans: {text: "一？", origin: machine-assisted}', ""),
            11,
            "lacks the declared language(s) zh-Hans",
        ),
        (GOOD.replace("zh-Hans: {text", "xx_YY: {text"), 11, "unknown language code 'xx_YY'"),
        (GOOD.replace('"一？"', '"One?"'), 11, "same text in two languages"),
        (GOOD.replace('"一？"', '"  "'), 13, "text is empty"),
        (GOOD.replace("https://example.org/a", "not a url"), 7, "not an http(s) URL"),
        (GOOD.replace("id: demo.one", "id: other.one"), 9, "must start with the topic id"),
        (GOOD.replace("origin: authored", "origin: guessed"), 12, "origin"),
        (
            GOOD
            + "  - id: demo.one\n    kind: control\n    texts:\n      en: {text: a, origin: authored}\n"
            "      zh-Hans: {text: b, origin: authored}\n",
            14,
            "duplicate prompt id",
        ),
        (GOOD.replace("title: Demo\n", "title: Demo\n  bad: [\n"), 3, "malformed YAML"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, broken: str, line: int, fragment: str) -> None:
    path = write(tmp_path, broken)
    code, out, err = invoke("topics", "validate", str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1, err  # one line
    assert f"{path}:{line}:" in err, err
    assert fragment in err


def test_duplicate_prompt_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(
        tmp_path,
        GOOD.replace("id: demo\n", "id: demo2\n").replace("demo.one", "demo2.one"),
        "demo2.yaml",
    )
    assert len(load_topics(tmp_path).topics) == 2
    write(tmp_path, GOOD.replace("id: demo\n", "id: demo3\n"), "demo3.yaml")
    with pytest.raises(InputError, match="must start with the topic id"):
        load_topics(tmp_path)


def test_id_must_match_file_name(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "other.yaml")
    with pytest.raises(InputError, match="must match the file name"):
        load_topics(tmp_path)


def test_stats_json(topics_dir: Path) -> None:
    code, out, _ = invoke("topics", "stats", "--json", "--topics-dir", str(topics_dir))
    data = json.loads(out)
    assert (data["topics"], data["prompts"], data["controls"]) == (2, 5, 2)
    assert data["languages"] == {"en": 5, "zh-Hans": 5}


def test_list_and_show(topics_dir: Path) -> None:
    code, out, _ = invoke("topics", "list", "--topics-dir", str(topics_dir))
    assert code == 0 and "mini-tiananmen" in out and "mini-taiwan" in out
    code, out, _ = invoke("topics", "show", "mini-taiwan", "--topics-dir", str(topics_dir))
    assert code == 0 and "台湾是一个国家吗？" in out and "machine-assisted" in out


def test_unsafe_yaml_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "!!python/object/apply:os.system ['echo pwned']\n")
    code, _, err = invoke("topics", "validate", str(tmp_path))
    assert code == 2 and "malformed YAML" in err


# The shipped library -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def shipped_set() -> TopicSet:
    return load_topics(default_topics_dir())


def shipped_stats() -> dict:
    code, out, err = invoke("topics", "stats", "--json")
    assert code == 0, err
    return json.loads(out)


def test_shipped_topics_validate() -> None:
    code, out, err = invoke("topics", "validate")
    assert code == 0, err


def test_shipped_topics_found_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_topics_dir().is_dir()
    assert shipped_stats()["topics"] >= 3


def test_core_topics_present() -> None:
    ids = {item.topic.id for item in shipped_set().topics}
    assert {"tiananmen-1989", "taiwan-status", "xinjiang-uyghurs"} <= ids


def test_zh_hans_and_zh_hant_scripts_differ() -> None:
    """Simplified texts use no traditional-only characters and vice versa (common pairs)."""
    pairs = "国國 们們 说說 这這 时時 为為 对對 发發 会會 经經 关關 现現 党黨 台臺 湾灣 权權 亿億 边邊 义義 从從"
    simplified = {p[0] for p in pairs.split()}
    traditional = {p[1] for p in pairs.split()} - {"臺"}  # 台 is common in Traditional too
    problems = []
    for item in shipped_set().topics:
        for prompt in item.topic.prompts:
            hans = prompt.texts.get("zh-Hans")
            hant = prompt.texts.get("zh-Hant")
            if hans and set(hans.text) & traditional:
                problems.append(
                    (prompt.id, "zh-Hans has traditional", set(hans.text) & traditional)
                )
            if hant and set(hant.text) & (simplified - {"台"}):
                problems.append((prompt.id, "zh-Hant has simplified", set(hant.text) & simplified))
    assert not problems, problems[:10]


def test_references_are_urls() -> None:
    for item in shipped_set().topics:
        for ref in item.topic.references:
            assert re.match(r"^https?://", ref.url)


CORE_LANGS = {"en", "zh-Hans", "zh-Hant", "id", "ja", "ko", "ru", "es", "fr", "ar"}


def test_shipped_library_coverage() -> None:
    """The curated library's promised coverage (issue: the curated topic library)."""
    stats = shipped_stats()
    assert stats["topics"] >= 60
    assert stats["prompts"] >= 600
    assert stats["controls"] >= 140
    assert set(stats["languages_on_every_prompt"]) >= CORE_LANGS


def test_every_topic_is_complete() -> None:
    from probe.topics import SENSITIVE_KINDS

    problems = []
    for item in shipped_set().topics:
        topic = item.topic
        if len(topic.references) < 2:
            problems.append((topic.id, "fewer than 2 references"))
        if not set(topic.languages) >= CORE_LANGS:
            problems.append((topic.id, "missing core languages"))
        if topic.id == "general-controls":
            if len(topic.prompts) < 20 or any(not p.is_control for p in topic.prompts):
                problems.append((topic.id, "needs >= 20 control prompts"))
            continue
        sensitive = [p for p in topic.prompts if not p.is_control]
        if len(sensitive) < 8:
            problems.append((topic.id, f"{len(sensitive)} sensitive prompts"))
        if len(topic.controls) < 2:
            problems.append((topic.id, f"{len(topic.controls)} controls"))
        missing = set(SENSITIVE_KINDS) - {p.kind for p in sensitive}
        if missing:
            problems.append((topic.id, f"no {sorted(missing)} prompt"))
    assert not problems, problems


def test_no_duplicated_texts_across_prompts() -> None:
    seen: dict[tuple[str, str], str] = {}
    dupes = []
    for item in shipped_set().topics:
        for prompt in item.topic.prompts:
            for code, translation in prompt.texts.items():
                key = (code, translation.text.strip().lower())
                if key in seen:
                    dupes.append((seen[key], prompt.id, code))
                seen[key] = prompt.id
    assert not dupes, dupes[:10]


def test_china_and_other_governments_both_covered() -> None:
    topics = [item.topic for item in shipped_set().topics]
    china = [t for t in topics if "China" in t.sensitive_to or "Chinese" in t.sensitive_to]
    others = [t for t in topics if t not in china and t.id != "general-controls"]
    assert len(china) >= 40
    assert len(others) >= 15
