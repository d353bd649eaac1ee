"""GPU model -> architecture -> compute capability, resolving the names people and nvidia-smi write.

``resolve_gpu("NVIDIA H100 80GB HBM3")``, ``resolve_gpu("h100")`` and ``resolve_gpu("H100")`` all give the
same :class:`GpuModel`. In pydantic models a ``GpuModel`` field validates from such a name and serialises
to the canonical one.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import core_schema

from orchestrator.errors import UnknownGpuError

# Words that never identify a model: vendor and brand names, form factors, memory sizes.
_NOISE = {"nvidia", "tesla", "geforce", "quadro", "graphics", "device"}
_SPLIT = re.compile(r"[\s\-_/,()]+")


class ComputeCapability(BaseModel):
    """``9.0`` as a comparable (major, minor) pair."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> ComputeCapability:
        m = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
        if not m:
            raise ValueError(f"compute capability {text!r} is not MAJOR.MINOR (e.g. 9.0)")
        return cls(major=int(m.group(1)), minor=int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __lt__(self, other: ComputeCapability) -> bool:
        return (self.major, self.minor) < (other.major, other.minor)

    def __le__(self, other: ComputeCapability) -> bool:
        return (self.major, self.minor) <= (other.major, other.minor)


class GpuModel:
    """One catalogued GPU model; compares and hashes by its canonical name."""

    __slots__ = ("aliases", "architecture", "catalogued", "compute_capability", "name")

    def __init__(self, name: str, architecture: str, compute_capability: ComputeCapability, aliases: tuple[str, ...],
                 catalogued: bool = True):
        self.name = name
        self.architecture = architecture
        self.compute_capability = compute_capability
        self.aliases = aliases
        self.catalogued = catalogued

    def __repr__(self) -> str:
        return f"GpuModel({self.name!r}, {self.architecture}, cc {self.compute_capability})"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GpuModel) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @classmethod
    def _coerce(cls, value: Any) -> GpuModel:
        if isinstance(value, GpuModel):
            return value
        if not isinstance(value, str):
            raise UnknownGpuError(repr(value), "expected a model name such as H100")
        return resolve_gpu(value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._coerce, serialization=core_schema.to_string_ser_schema()
        )


def _tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in _SPLIT.split(name.lower()) if t and t not in _NOISE)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


@cache
def catalogue() -> tuple[GpuModel, ...]:
    """The shipped catalogue (``orchestrator/data/gpus.yaml``)."""
    text = resources.files("orchestrator.data").joinpath("gpus.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    models = []
    for entry in data["models"]:
        models.append(
            GpuModel(
                name=entry["name"],
                architecture=entry["architecture"],
                compute_capability=ComputeCapability.parse(entry["compute_capability"]),
                aliases=tuple(entry["aliases"]),
            )
        )
    return tuple(models)


@cache
def resolve_gpu(name: str) -> GpuModel:
    """Find the catalogued model a free-form name refers to; the longest matching alias wins (memoised: a
    fleet names a handful of models thousands of times)."""
    tokens = _tokens(name)
    best: tuple[int, GpuModel] | None = None
    for model in catalogue():
        for alias in model.aliases:
            alias_tokens = _tokens(alias)
            if alias_tokens and _contains(tokens, alias_tokens) and (best is None or len(alias_tokens) > best[0]):
                best = (len(alias_tokens), model)
    if best is None:
        known = ", ".join(m.name for m in catalogue())
        raise UnknownGpuError(name, f"known models: {known}")
    return best[1]


def find_gpu(name: str) -> GpuModel | None:
    """The catalogued model a name refers to, or None (``resolve_gpu`` without the error)."""
    try:
        return resolve_gpu(name)
    except UnknownGpuError:
        return None


@cache
def _capabilities() -> dict[str, tuple[ComputeCapability, ...]]:
    """Architecture -> its compute capabilities, from the catalogue's ``architectures`` table."""
    text = resources.files("orchestrator.data").joinpath("gpus.yaml").read_text(encoding="utf-8")
    table = yaml.safe_load(text)["architectures"]
    return {arch: tuple(ComputeCapability.parse(c) for c in body["compute_capabilities"])
            for arch, body in table.items()}


def uncatalogued_gpu(name: str, architecture: str | None, capability: str | None) -> GpuModel | None:
    """A model the catalogue lacks, described by what the host itself reports: ``nvidia-smi``'s
    ``product_architecture`` and ``compute_cap``. One of the two is enough: a compute capability names its
    architecture; an architecture alone gets its lowest capability (the conservative one for CUDA minimums).
    None when the host reports neither usable.

    Example: ``uncatalogued_gpu("NVIDIA RTX A5000", "Ampere", "8.6")`` -> Ampere, cc 8.6.
    """
    table = _capabilities()
    cc: ComputeCapability | None = None
    if capability:
        try:
            cc = ComputeCapability.parse(capability)
        except ValueError:
            cc = None
    arch = None
    if architecture and architecture.strip().lower() not in ("", "n/a", "unknown", "[n/a]"):
        wanted = architecture.strip().lower()
        arch = next((a for a in table if a.lower() == wanted), architecture.strip())
    if arch is None and cc is not None:
        arch = next((a for a, ccs in table.items() if cc in ccs), None)
    if arch is not None and cc is None and table.get(arch):
        cc = min(table[arch], key=lambda c: (c.major, c.minor))
    if arch is None or cc is None:
        return None
    return GpuModel(name=name.strip() or "unnamed GPU", architecture=arch, compute_capability=cc, aliases=(),
                    catalogued=False)


def architectures() -> dict[str, list[GpuModel]]:
    """Architecture name -> its catalogued models, for listings and the knowledge base."""
    out: dict[str, list[GpuModel]] = {}
    for model in catalogue():
        out.setdefault(model.architecture, []).append(model)
    return out
