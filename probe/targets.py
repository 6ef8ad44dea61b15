"""Targets: which model, at which OpenAI-compatible endpoint, with which default parameters.

A target never holds an API key, only the name of the environment variable that does, so a
target can be stored, printed and exported without leaking a secret.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from probe.errors import InputError, TargetError

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class Params:
    """Generation parameters; part of every job's identity."""

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    system: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    name: str
    model: str
    base_url: str
    api_key_env: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    requests_per_minute: float | None = None
    params: Params = field(default_factory=Params)
    timeout_s: float = 120.0
    max_retries: int = 6

    def public(self) -> dict[str, Any]:
        """What may be stored: no key, base URL without credentials."""
        return {
            "name": self.name,
            "model": self.model,
            "base_url": redact_url(self.base_url),
            "api_key_env": self.api_key_env,
            "concurrency": self.concurrency,
            "requests_per_minute": self.requests_per_minute,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
        }

    def api_key(self) -> str:
        """Read the key from the environment at call time; never stored on the target."""
        if not self.api_key_env:
            return "not-needed"
        value = os.environ.get(self.api_key_env)
        if not value:
            raise TargetError(
                f"environment variable {self.api_key_env} is not set; export it with the API key "
                f"for {self.name} (or pass --api-key-env NAME)"
            )
        return value


def redact_url(url: str) -> str:
    """Drop user:password from a URL and the values of query parameters that look secret."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = "&".join(
        f"{k}=REDACTED" if any(s in k.lower() for s in ("key", "token", "secret", "sig")) else kv
        for kv in parts.query.split("&")
        if kv
        for k in [kv.split("=", 1)[0]]
    )
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), query, ""))


_TARGET_KEYS = {
    "model",
    "base_url",
    "api_key_env",
    "concurrency",
    "requests_per_minute",
    "rpm",
    "temperature",
    "max_tokens",
    "seed",
    "system",
    "system_prompt",
    "extra_body",
    "timeout_s",
    "max_retries",
}


def load_targets_file(path: Path) -> dict[str, Target]:
    """Read a TOML or YAML file of named targets:

    [targets.deepseek]            # or, in YAML, targets: {deepseek: {...}}
    model = "deepseek-chat"
    base_url = "https://api.deepseek.com/v1"
    api_key_env = "DEEPSEEK_API_KEY"
    concurrency = 4
    temperature = 0.7
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read targets file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: malformed targets file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of targets")
    entries = data.get("targets", data)
    targets: dict[str, Target] = {}
    for name, raw in entries.items():
        if not isinstance(raw, dict):
            raise InputError(f"{path}: target {name!r} must be a table/mapping")
        unknown = set(raw) - _TARGET_KEYS
        if unknown:
            raise InputError(
                f"{path}: target {name!r} has unknown key(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(_TARGET_KEYS))}"
            )
        if "api_key" in raw:
            raise InputError(
                f"{path}: target {name!r}: put the key in an environment variable "
                "and name it with api_key_env"
            )
        for required in ("model", "base_url"):
            if required not in raw:
                raise InputError(f"{path}: target {name!r} lacks {required}")
        targets[name] = Target(
            name=name,
            model=str(raw["model"]),
            base_url=str(raw["base_url"]),
            api_key_env=raw.get("api_key_env"),
            concurrency=int(raw.get("concurrency", DEFAULT_CONCURRENCY)),
            requests_per_minute=raw.get("requests_per_minute", raw.get("rpm")),
            timeout_s=float(raw.get("timeout_s", 120.0)),
            max_retries=int(raw.get("max_retries", 6)),
            params=Params(
                temperature=raw.get("temperature"),
                max_tokens=raw.get("max_tokens"),
                seed=raw.get("seed"),
                system=raw.get("system", raw.get("system_prompt")),
                extra_body=dict(raw.get("extra_body") or {}),
            ),
        )
    return targets
