"""Load the shipped facts and an optional site override into one validated, fingerprinted ``Knowledge``.

The only module of the knowledge package that reads files; the engine and rules never do IO.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from orchestrator.errors import InputError
from orchestrator.knowledge.facts import (
    Architecture,
    ArchitectureFacts,
    BranchOsSupport,
    CompatBaseFloor,
    CompatSupport,
    CudaOsSupport,
    CudaRelease,
    CudaReleaseFacts,
    CudnnRelease,
    DriverBranch,
    DriverBranchFacts,
    ForwardCompat,
    FrameworkBuild,
    GoldenStack,
    LibraryFacts,
    ModelNeed,
    NcclRelease,
    OsFacts,
    SiteFacts,
)
from orchestrator.loading import parse_yaml, read_text, validate
from orchestrator.model.versions import CudaVersion

SHIPPED_DATA_VERSION = "2026.2"
# The day the shipped facts were last checked against NVIDIA's (and the frameworks') pages.
SHIPPED_DATA_DATE = "2026-12-01"
UPDATE_COMMAND = "upgrade knowledge import redistrib_<version>.json --site <site.yaml>"
_FILES: dict[str, tuple[str, type[BaseModel]]] = {
    "cuda": ("cuda.yaml", CudaReleaseFacts),
    "drivers": ("drivers.yaml", DriverBranchFacts),
    "architectures": ("architectures.yaml", ArchitectureFacts),
    "libraries": ("libraries.yaml", LibraryFacts),
    "os": ("os.yaml", OsFacts),
}

M = TypeVar("M", bound=BaseModel)


class KnowledgeError(InputError):
    """A facts file (shipped or site override) is missing, malformed or breaks the schema."""


@dataclass(frozen=True)
class Conflict:
    """A site fact that replaces a shipped one with different content."""

    section: str
    key: str
    shipped: dict[str, Any]
    override: dict[str, Any]
    file: str

    def describe(self) -> str:
        changed = sorted(
            k
            for k in set(self.shipped) | set(self.override)
            if self.shipped.get(k) != self.override.get(k) and k not in ("source", "sources", "note")
        )
        what = ", ".join(f"{k}: {self.shipped.get(k)!r} -> {self.override.get(k)!r}" for k in changed)
        return f"{self.file}: {self.section} {self.key} overrides shipped facts ({what or 'provenance only'})"


@dataclass(frozen=True)
class Knowledge:
    """Every fact the rules use, loaded once; ``version`` fingerprints the content for the planner."""

    cuda: CudaReleaseFacts
    drivers: DriverBranchFacts
    architectures: ArchitectureFacts
    libraries: LibraryFacts
    golden_stacks: tuple[GoldenStack, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    override_file: str | None = None
    version: str = field(default="")
    os: OsFacts = field(default_factory=OsFacts)
    date: str = SHIPPED_DATA_DATE

    def newest_cuda(self) -> CudaRelease | None:
        return max(self.cuda.releases, key=lambda r: r.version, default=None)

    def newest_branch(self) -> DriverBranch | None:
        return max(self.drivers.branches, key=lambda b: b.branch, default=None)

    def cuda_os(self, cuda: CudaVersion) -> CudaOsSupport | None:
        """The OS table of a CUDA release: its own, else the one of its minor series (``13.0`` for 13.0.2)."""
        same = [t for t in self.os.cuda if t.cuda.key[:2] == cuda.key[:2]]
        exact = [t for t in same if t.cuda == cuda]
        return exact[0] if exact else (same[0] if same else None)

    def branch_os(self, branch: int) -> BranchOsSupport | None:
        return next((t for t in self.os.drivers if t.branch == branch), None)

    def branch(self, number: int) -> DriverBranch | None:
        return next((b for b in self.drivers.branches if b.branch == number), None)

    def architecture(self, name: str) -> Architecture | None:
        return next((a for a in self.architectures.architectures if a.name == name), None)

    def model_need(self, name: str) -> ModelNeed | None:
        return next((m for m in self.architectures.models if m.name == name), None)


def _parse(text: str, where: str, model: type[M]) -> M:
    return validate(model, parse_yaml(text, where, KnowledgeError) or {}, where, KnowledgeError)


def _shipped() -> dict[str, BaseModel]:
    out: dict[str, BaseModel] = {}
    for section, (name, model) in _FILES.items():
        text = resources.files("orchestrator.knowledge.data").joinpath(name).read_text(encoding="utf-8")
        out[section] = _parse(text, f"shipped {name}", model)
    return out


def _merge(
    section: str,
    shipped: Sequence[M],
    extra: Sequence[M],
    key: Callable[[M], Hashable],
    file: str,
    conflicts: list[Conflict],
) -> tuple[M, ...]:
    """Site entries replace shipped ones with the same key (a conflict if they differ) or are added."""
    merged: dict[Hashable, M] = {key(item): item for item in shipped}
    for item in extra:
        k = key(item)
        old = merged.get(k)
        if old is not None and old != item:
            conflicts.append(
                Conflict(
                    section,
                    str(k),
                    old.model_dump(mode="json", exclude_defaults=True),
                    item.model_dump(mode="json", exclude_defaults=True),
                    file,
                )
            )
        merged[k] = item
    return tuple(merged.values())


def _fingerprint(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def load_knowledge(override: Path | None = None) -> Knowledge:
    """Shipped facts plus an optional site file; conflicts are kept on the result, the site's value wins."""
    base = _shipped()
    cuda, drivers = base["cuda"], base["drivers"]
    archs, libs, os_facts = base["architectures"], base["libraries"], base["os"]
    assert isinstance(cuda, CudaReleaseFacts) and isinstance(drivers, DriverBranchFacts)
    assert isinstance(archs, ArchitectureFacts) and isinstance(libs, LibraryFacts)
    assert isinstance(os_facts, OsFacts)
    golden: tuple[GoldenStack, ...] = ()
    conflicts: list[Conflict] = []
    file = None
    date = SHIPPED_DATA_DATE
    if override is not None:
        file = str(override)
        site = _parse(read_text(override, KnowledgeError, "site facts"), file, SiteFacts)
        cuda = cuda.model_copy(
            update={
                "releases": _merge(
                    "cuda release", cuda.releases, site.cuda.releases, _release_key, file, conflicts
                ),
                **(
                    {"minor_version_compatibility": site.cuda.minor_version_compatibility}
                    if site.cuda.minor_version_compatibility
                    else {}
                ),
            }
        )
        drivers = drivers.model_copy(
            update={
                "branches": _merge(
                    "driver branch", drivers.branches, site.drivers.branches, _branch_key, file, conflicts
                )
            }
        )
        archs = archs.model_copy(
            update={
                "architectures": _merge(
                    "architecture",
                    archs.architectures,
                    site.architectures.architectures,
                    _name_key,
                    file,
                    conflicts,
                ),
                "models": _merge(
                    "model", archs.models, site.architectures.models, _name_key, file, conflicts
                ),
                "forward_compatibility": _merge_fc(
                    archs.forward_compatibility, site.architectures.forward_compatibility, file, conflicts
                ),
            }
        )
        os_facts = os_facts.model_copy(
            update={
                "cuda": _merge("os of cuda", os_facts.cuda, site.os.cuda, _os_cuda_key, file, conflicts),
                "drivers": _merge(
                    "os of branch", os_facts.drivers, site.os.drivers, _os_branch_key, file, conflicts
                ),
            }
        )
        date = max(date, site.date or date)
        libs = libs.model_copy(
            update={
                "cudnn": _merge("cudnn", libs.cudnn, site.libraries.cudnn, _cudnn_key, file, conflicts),
                "nccl": _merge("nccl", libs.nccl, site.libraries.nccl, _nccl_key, file, conflicts),
                "frameworks": _merge(
                    "framework", libs.frameworks, site.libraries.frameworks, _fw_key, file, conflicts
                ),
            }
        )
        golden = site.golden_stacks
    parts: dict[str, Any] = {
        k: v.model_dump(mode="json")
        for k, v in (
            ("cuda", cuda), ("drivers", drivers), ("architectures", archs), ("libraries", libs), ("os", os_facts)
        )
    }
    parts["golden"] = [g.model_dump(mode="json") for g in golden]
    version = f"{SHIPPED_DATA_VERSION}+{_fingerprint(parts)}"
    return Knowledge(cuda, drivers, archs, libs, golden, tuple(conflicts), file, version, os_facts, date)


def _merge_fc(
    shipped: ForwardCompat | None, site: ForwardCompat | None, file: str, conflicts: list[Conflict]
) -> ForwardCompat | None:
    """Site rows of the forward-compatibility table add to or replace shipped ones; models add up."""
    if site is None or shipped is None:
        return site or shipped
    return shipped.model_copy(
        update={
            "datacenter_models": tuple(dict.fromkeys((*shipped.datacenter_models, *site.datacenter_models))),
            "support": _merge("cuda-compat support", shipped.support, site.support, _compat_key, file, conflicts),
            "base_floors": _merge(
                "cuda-compat floor", shipped.base_floors, site.base_floors, _floor_key, file, conflicts
            ),
            "excluded": site.excluded or shipped.excluded,
            "table_branches": site.table_branches or shipped.table_branches,
        }
    )


def _compat_key(r: CompatSupport) -> Hashable:
    return r.cuda.key[:2]


def _floor_key(f: CompatBaseFloor) -> Hashable:
    return f.cuda_major


def _os_cuda_key(t: CudaOsSupport) -> Hashable:
    return (t.cuda.key, t.arch)


def _os_branch_key(t: BranchOsSupport) -> Hashable:
    return (t.branch, t.arch)


def _release_key(r: CudaRelease) -> Hashable:
    return r.version.key


def _branch_key(b: DriverBranch) -> Hashable:
    return b.branch


def _name_key(a: Architecture | ModelNeed) -> Hashable:
    return a.name


def _cudnn_key(c: CudnnRelease) -> Hashable:
    return c.version.key


def _nccl_key(n: NcclRelease) -> Hashable:
    return n.version.key


def _fw_key(f: FrameworkBuild) -> Hashable:
    return (f.name.lower(), f.version)
