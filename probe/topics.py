"""Topic sets: the curated prompts that probe sends, loaded from `topics/*.yaml` and validated.

A topic groups prompts about one subject that some government or actor is sensitive to. Each
prompt carries its text in several languages, each translation with its provenance, so a
published figure can always be traced to the exact wording that was sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probe.errors import InputError
from probe.yamlpos import line_of, load_with_nodes

PromptKind = Literal[
    "factual", "explanatory", "opinion", "critical", "creative", "comparison", "control"
]
SENSITIVE_KINDS: tuple[str, ...] = (
    "factual",
    "explanatory",
    "opinion",
    "critical",
    "creative",
    "comparison",
)

# BCP-47: a primary language subtag, then optional script / region / variant subtags.
_BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PROMPT_ID = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")


class Translation(BaseModel):
    """One prompt's wording in one language, and how that wording came to be."""

    model_config = ConfigDict(extra="forbid")

    text: str
    origin: Literal["authored", "machine-assisted"]
    reviewed: bool = False

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty; write the prompt or remove the language")
        return value


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: PromptKind
    texts: dict[str, Translation]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _PROMPT_ID.match(value):
            raise ValueError(
                f"prompt id {value!r} must look like '<topic-id>.<slug>' in lowercase kebab case"
            )
        return value

    @field_validator("texts")
    @classmethod
    def _language_codes(cls, value: dict[str, Translation]) -> dict[str, Translation]:
        for code in value:
            if not _BCP47.match(code):
                raise ValueError(
                    f"unknown language code {code!r}; use BCP-47 such as en, zh-Hans, zh-Hant, id"
                )
        if not value:
            raise ValueError("a prompt needs at least one text")
        return value

    @property
    def is_control(self) -> bool:
        return self.kind == "control"


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    title: str = ""

    @field_validator("url")
    @classmethod
    def _is_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+\.[^\s]+$", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    sensitive_to: str
    rationale: str
    references: list[Reference] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    prompts: list[Prompt]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"topic id {value!r} must be lowercase kebab case")
        return value

    @field_validator("languages")
    @classmethod
    def _declared_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _BCP47.match(code):
                raise ValueError(
                    f"unknown language code {code!r}; use BCP-47 such as en, zh-Hans, zh-Hant, id"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Topic:
        seen: set[str] = set()
        for index, prompt in enumerate(self.prompts):
            if prompt.id in seen:
                raise _LocatedValueError(
                    ("prompts", index, "id"), f"duplicate prompt id {prompt.id!r}"
                )
            seen.add(prompt.id)
            if not prompt.id.startswith(self.id + "."):
                raise _LocatedValueError(
                    ("prompts", index, "id"),
                    f"prompt id {prompt.id!r} must start with the topic id '{self.id}.'",
                )
            missing = [code for code in self.languages if code not in prompt.texts]
            if missing:
                raise _LocatedValueError(
                    ("prompts", index, "texts"),
                    f"prompt {prompt.id!r} lacks the declared language(s) {', '.join(missing)}; "
                    "add the translation or remove the language from `languages`",
                )
            # Simplified and Traditional Chinese may legitimately coincide character for
            # character; any other pair of identical texts is a missing translation.
            texts = [t.text.strip() for code, t in prompt.texts.items() if code != "zh-Hant"]
            dupes = [t for t, n in Counter(texts).items() if n > 1]
            if dupes:
                raise _LocatedValueError(
                    ("prompts", index, "texts"),
                    f"prompt {prompt.id!r} has the same text in two languages: {dupes[0][:40]!r}",
                )
        return self

    @property
    def controls(self) -> list[Prompt]:
        return [p for p in self.prompts if p.is_control]


class _LocatedValueError(ValueError):
    """A cross-field error that knows which part of the document it concerns."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True)
class TopicFile:
    topic: Topic
    path: Path


@dataclass(frozen=True)
class TopicSet:
    """All topics found in a directory, in file-name order."""

    topics: tuple[TopicFile, ...]
    root: Path

    def get(self, topic_id: str) -> Topic:
        for item in self.topics:
            if item.topic.id == topic_id:
                return item.topic
        known = ", ".join(t.topic.id for t in self.topics[:8])
        raise InputError(f"unknown topic {topic_id!r} in {self.root}; known topics include {known}")

    def select(self, ids: list[str] | None) -> list[Topic]:
        if not ids:
            return [item.topic for item in self.topics]
        return [self.get(topic_id) for topic_id in ids]

    def content_hash(self) -> str:
        """A hash of every topic's normalised content: two studies with the same hash sent the
        same prompts in the same wording."""
        digest = hashlib.sha256()
        for item in sorted(self.topics, key=lambda t: t.topic.id):
            digest.update(json.dumps(item.topic.model_dump(), sort_keys=True).encode())
        return digest.hexdigest()[:16]


def load_topic(path: Path) -> Topic:
    """Load and validate one topic file; errors name the file and line."""
    data, node = load_with_nodes(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: a topic file must be a YAML mapping with id, title, prompts")
    try:
        topic = Topic.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        ctx_error = error.get("ctx", {}).get("error")
        if isinstance(ctx_error, _LocatedValueError):
            loc = ctx_error.loc
        field = ".".join(str(part) for part in loc) or "document"
        line = line_of(node, loc)
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise InputError(f"{path}:{line}: {field}: {message}{more}") from exc
    if topic.id != path.stem:
        raise InputError(
            f"{path}:{line_of(node, ('id',))}: topic id {topic.id!r} must match the file name "
            f"{path.stem!r}; rename one of them"
        )
    return topic


def load_topics(root: Path) -> TopicSet:
    """Load every `*.yaml` topic in `root` (or the single file `root`), checking ids are unique
    across files."""
    if not root.exists():
        raise InputError(f"{root}: no such topics directory; pass --topics-dir PATH")
    paths = [root] if root.is_file() else sorted(root.glob("*.yaml"))
    if not paths:
        raise InputError(f"{root}: no topic files (*.yaml) found; pass --topics-dir PATH")
    items: list[TopicFile] = []
    prompt_owner: dict[str, Path] = {}
    topic_owner: dict[str, Path] = {}
    for path in paths:
        topic = load_topic(path)
        if topic.id in topic_owner:
            raise InputError(
                f"{path}:1: duplicate topic id {topic.id!r}, also in {topic_owner[topic.id]}"
            )
        topic_owner[topic.id] = path
        for prompt in topic.prompts:
            if prompt.id in prompt_owner:
                raise InputError(
                    f"{path}: duplicate prompt id {prompt.id!r}, also in {prompt_owner[prompt.id]}"
                )
            prompt_owner[prompt.id] = path
        items.append(TopicFile(topic=topic, path=path))
    return TopicSet(topics=tuple(items), root=root)


def topic_stats(topic_set: TopicSet) -> dict[str, object]:
    """Coverage counts: what `probe topics stats --json` prints."""
    topics = [item.topic for item in topic_set.topics]
    prompts = [p for t in topics for p in t.prompts]
    languages: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for prompt in prompts:
        languages.update(prompt.texts.keys())
        kinds[prompt.kind] += 1
    every_prompt = sorted(code for code, count in languages.items() if count == len(prompts))
    return {
        "topics": len(topics),
        "prompts": len(prompts),
        "controls": sum(1 for p in prompts if p.is_control),
        "sensitive": sum(1 for p in prompts if not p.is_control),
        "languages": dict(sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))),
        "languages_on_every_prompt": every_prompt,
        "kinds": dict(sorted(kinds.items())),
        "texts": sum(languages.values()),
        "topic_set_hash": topic_set.content_hash(),
    }
