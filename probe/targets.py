"""Targets: which model, at which OpenAI-compatible endpoint, with which default parameters.

A target never holds an API key, only the name of the environment variable that does, so a
target can be stored, printed and exported without leaking a secret. Everything that could
carry a credential (the key itself, a password or token in the base URL) is known to the
target as a *secret value*, and `Redactor` scrubs those values from anything probe writes:
a hostile or buggy endpoint that echoes the Authorization header must not get the key into a
published store.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from probe.errors import InputError, TargetError

DEFAULT_CONCURRENCY = 8
REDACTED = "[REDACTED]"
# Query parameters whose values are credentials (matched as substrings of the name).
_SECRET_QUERY_NAMES = ("key", "token", "secret", "sig", "pass", "auth", "credential")
# Request fields probe sets itself; a target's extra_body may not override them, or the job
# identity (model) would lie about what was sent, or the reply could not be parsed (stream, n).
_RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream", "n"})
# Shorter strings are not scrubbed from replies: they are not real secrets and scrubbing them
# would corrupt ordinary text (a 3-letter "key" would blank every matching word).
_MIN_SECRET_CHARS = 6


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

    def api_key(self) -> str | None:
        """Read the key from the environment at call time; never stored on the target.

        None when the target needs no key (local servers)."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value or not value.strip():
            raise TargetError(
                f"environment variable {self.api_key_env} is not set; export it with the API key "
                f"for {self.name} (or pass --api-key-env NAME)"
            )
        value = value.strip()
        # A key goes into an HTTP header: a pasted quote, a zero-width space or a newline would
        # be rejected by the server (or split the header). Say so, without echoing the key.
        bad = sorted({f"U+{ord(c):04X}" for c in value if not 0x21 <= ord(c) <= 0x7E})
        if bad:
            raise TargetError(
                f"environment variable {self.api_key_env} holds characters that cannot be "
                f"sent in an HTTP header ({', '.join(bad[:3])}); re-export the key without "
                "spaces, quotes or invisible characters"
            )
        return value

    def secret_values(self) -> tuple[str, ...]:
        """Every credential this target may send: the key, and passwords or tokens in its URL."""
        found: list[str] = []
        if self.api_key_env:
            value = (os.environ.get(self.api_key_env) or "").strip()
            if value:
                found.append(value)
        parts = urlsplit(self.base_url)
        if parts.password:
            found.append(parts.password)
        # A bare user part can be a token (https://TOKEN@host); a short one is just a name.
        if parts.username and (parts.password is None or len(parts.username) >= 16):
            found.append(parts.username)
        for kv in parts.query.split("&"):
            name, _, value = kv.partition("=")
            if value and _is_secret_name(name):
                found.append(value)
        out: list[str] = []
        for value in found:
            for form in (value, unquote(value)):
                if len(form) >= _MIN_SECRET_CHARS and form not in out:
                    out.append(form)
        return tuple(out)

    def redactor(self) -> Redactor:
        return Redactor(self.secret_values())


class Redactor:
    """Replace known secret values in text and in JSON-like data.

    Longest values first, so a key that contains another secret is removed whole."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def data(self, value: Any) -> Any:
        """Scrub strings anywhere inside dicts and lists (keys included)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(s in lowered for s in _SECRET_QUERY_NAMES)


def redact_url(url: str) -> str:
    """Drop user:password from a URL and the values of query parameters that look secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal: keep its brackets or the port would run into it
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    query = "&".join(
        f"{k}=REDACTED" if _is_secret_name(k) else kv
        for kv in parts.query.split("&")
        if kv
        for k in [kv.split("=", 1)[0]]
    )
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), query, ""))


def check_base_url(url: str, where: str = "--base-url") -> str:
    """Refuse a base URL that cannot work, before anything is sent or stored."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"{where} {redact_url(url)!r} is not an http(s) URL; "
            "write it like https://api.example.com/v1"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise InputError(f"{where} {redact_url(url)!r}: bad port ({exc})") from exc
    return url.strip()


def check_extra_body(extra: dict[str, Any], where: str) -> dict[str, Any]:
    reserved = sorted(_RESERVED_BODY_KEYS & set(extra))
    if reserved:
        raise InputError(
            f"{where}: extra_body may not set {', '.join(reserved)} (probe sets them itself); "
            "remove them"
        )
    return extra


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


def _number(
    raw: dict[str, Any], key: str, kind: type, where: str, *, minimum: float | None = None
) -> Any:
    """A numeric field of a target entry, checked, so a typo fails at load with file and
    target named instead of as a traceback (or a 400 on every request) later."""
    value = raw.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if ok and not math.isfinite(float(value)):
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if not ok:
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise InputError(
            f"{where}: {key} must be a{'n integer' if kind is int else ' number'}"
            f"{bound}, not {value!r}"
        )
    return kind(value)


def load_targets_file(path: Path) -> dict[str, Target]:
    """Read a TOML or YAML file of named targets:

    [targets.deepseek]            # or, in YAML, targets: {deepseek: {...}}
    model = "deepseek-chat"
    base_url = "https://api.deepseek.com/v1"
    api_key_env = "DEEPSEEK_API_KEY"
    concurrency = 4
    temperature = 0.7

    YAML goes through the safe loader: a targets file can never construct Python objects.
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read targets file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: malformed TOML ({exc}); fix the syntax") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}{line}: malformed YAML ({problem}); fix the syntax") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of targets, like [targets.NAME] in TOML")
    entries = data.get("targets", data)
    if not isinstance(entries, dict):
        raise InputError(f"{path}: `targets` must be a table/mapping of named targets")
    targets: dict[str, Target] = {}
    for name, raw in entries.items():
        where = f"{path}: target {name!r}"
        if not isinstance(raw, dict):
            raise InputError(f"{where} must be a table/mapping")
        if "api_key" in raw:
            raise InputError(
                f"{where}: put the key in an environment variable and name it with api_key_env"
            )
        unknown = set(raw) - _TARGET_KEYS
        if unknown:
            raise InputError(
                f"{where} has unknown key(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(_TARGET_KEYS))}"
            )
        for required in ("model", "base_url"):
            if not isinstance(raw.get(required), str) or not raw[required].strip():
                raise InputError(f"{where} lacks {required} (a string)")
        for text_key in ("api_key_env", "system", "system_prompt"):
            if raw.get(text_key) is not None and not isinstance(raw[text_key], str):
                raise InputError(f"{where}: {text_key} must be a string")
        extra = raw.get("extra_body") or {}
        if not isinstance(extra, dict):
            raise InputError(f"{where}: extra_body must be a table/mapping")
        rpm = _number(raw, "requests_per_minute", float, where, minimum=0)
        if rpm is None:
            rpm = _number(raw, "rpm", float, where, minimum=0)
        concurrency = _number(raw, "concurrency", int, where, minimum=1)
        timeout_s = _number(raw, "timeout_s", float, where, minimum=0.001)
        max_retries = _number(raw, "max_retries", int, where, minimum=0)
        targets[name] = Target(
            name=str(name),
            model=raw["model"].strip(),
            base_url=check_base_url(raw["base_url"], f"{where}: base_url"),
            api_key_env=raw.get("api_key_env"),
            concurrency=concurrency or DEFAULT_CONCURRENCY,
            requests_per_minute=rpm or None,
            timeout_s=timeout_s if timeout_s is not None else 120.0,
            max_retries=max_retries if max_retries is not None else 6,
            params=Params(
                temperature=_number(raw, "temperature", float, where, minimum=0),
                max_tokens=_number(raw, "max_tokens", int, where, minimum=1),
                seed=_number(raw, "seed", int, where),
                system=raw.get("system", raw.get("system_prompt")),
                extra_body=check_extra_body(dict(extra), where),
            ),
        )
    return targets
