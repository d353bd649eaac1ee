"""NVIDIA's machine-readable release manifests (``redistrib_<version>.json``) -> site knowledge facts. Pure.

Two kinds, both published by NVIDIA next to the downloads:

- CUDA (``developer.download.nvidia.com/compute/cuda/redist/redistrib_13.1.0.json``): ``release_label``,
  ``release_date``, ``release_product: cuda`` and one object per component; an ``nvidia_driver`` component, when
  present, is the driver the toolkit ships with (the release's minimum driver in Table 3 of the release notes).
- Driver (``.../compute/nvidia-driver/redist/redistrib_620.70.06.json``): ``release_product: nvidia-driver``;
  ``cuda_compat.cuda_variant`` lists the CUDA releases whose cuda-compat package is built from this driver,
  i.e. the CUDA releases this driver corresponds to. Early files (R450-R525) have only ``release_date``.

Example::

    m = parse_manifest(json.loads(text), "redistrib_620.70.06.json")
    add = additions(load_knowledge(site), [m])     # only facts the knowledge base does not have yet
    site_dict = merged_site(existing_site_dict, add)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.errors import VersionError
from orchestrator.knowledge.loader import Knowledge, KnowledgeError
from orchestrator.model.versions import CudaVersion, DriverVersion

CUDA_REDIST = "https://developer.download.nvidia.com/compute/cuda/redist/"
DRIVER_REDIST = "https://developer.download.nvidia.com/compute/nvidia-driver/redist/"
_NAME = re.compile(r"redistrib_(\d[\w.]*)\.json$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Product(StrEnum):
    CUDA = "cuda"
    DRIVER = "nvidia-driver"


@dataclass(frozen=True)
class Manifest:
    """What one manifest says that the knowledge base uses."""

    product: Product
    label: str
    released: str | None
    source: str
    driver: DriverVersion | None = None  # CUDA: the driver it ships with
    compat_cuda: tuple[CudaVersion, ...] = ()  # driver: CUDA releases of its cuda-compat packages

    @property
    def file(self) -> str:
        return f"redistrib_{self.label}.json"


@dataclass
class Additions:
    """New facts for the site file, and one line per manifest fact already known (skipped)."""

    releases: list[dict[str, Any]] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    date: str | None = None


def _component_version(data: dict[str, Any], name: str) -> str | None:
    comp = data.get(name)
    version = comp.get("version") if isinstance(comp, dict) else None
    return version if isinstance(version, str) else None


def parse_manifest(data: object, where: str) -> Manifest:
    """Validate a manifest's shape; anything else is one KnowledgeError naming the file."""
    if not isinstance(data, dict):
        raise KnowledgeError(where, "not a release manifest (expected a JSON object)")
    m = _NAME.search(where)
    label = data.get("release_label") or (m.group(1) if m else None)
    if not isinstance(label, str):
        raise KnowledgeError(where, "no release_label and the file is not named redistrib_<version>.json")
    released = data.get("release_date")
    if released is not None and not (isinstance(released, str) and _DAY.match(released)):
        raise KnowledgeError(where, f"release_date {released!r} is not YYYY-MM-DD")
    product = data.get("release_product")
    try:
        if product == Product.CUDA or (product is None and re.match(r"^\d{1,2}\.\d", label)):
            driver = _component_version(data, "nvidia_driver")
            return Manifest(
                Product.CUDA,
                label,
                released,
                CUDA_REDIST + f"redistrib_{label}.json",
                driver=DriverVersion(driver) if driver else None,
            )
        if product == Product.DRIVER or (product is None and re.match(r"^\d{3}\.", label)):
            DriverVersion(label)
            compat = data.get("cuda_compat")
            variants = compat.get("cuda_variant", []) if isinstance(compat, dict) else []
            if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
                raise KnowledgeError(where, "cuda_compat.cuda_variant is not a list of CUDA versions")
            return Manifest(
                Product.DRIVER,
                label,
                released,
                DRIVER_REDIST + f"redistrib_{label}.json",
                compat_cuda=tuple(CudaVersion(v) for v in variants),
            )
    except VersionError as exc:
        raise KnowledgeError(where, str(exc)) from exc
    raise KnowledgeError(where, f"release_product {product!r} is neither 'cuda' nor 'nvidia-driver'")


def additions(k: Knowledge, manifests: list[Manifest]) -> Additions:
    """The facts the manifests add to ``k``; facts it already has are skipped (the shipped data wins)."""
    out = Additions()
    known_cuda = {r.version.key for r in k.cuda.releases}
    known_minor = {r.version.key[:2] for r in k.cuda.releases}
    known_branches = {b.branch for b in k.drivers.branches}
    for m in sorted(manifests, key=lambda m: (m.product, m.label)):
        if m.released:
            out.date = max(out.date or m.released, m.released)
        if m.product is Product.CUDA:
            cuda = CudaVersion(m.label)
            if cuda.key in known_cuda:
                out.notes.append(f"CUDA {m.label}: already known")
                continue
            entry: dict[str, Any] = {"version": m.label, "label": f"CUDA {m.label}", "source": m.source}
            if m.released:
                entry["released"] = m.released
            if m.driver is not None:
                entry["min_driver"] = str(m.driver)
            else:
                entry["note"] = "the manifest names no driver: requirement unknown (import the driver manifest)"
            out.releases.append(entry)
            known_cuda.add(cuda.key)
            known_minor.add(cuda.key[:2])
            continue
        driver = DriverVersion(m.label)
        if driver.major in known_branches:
            out.notes.append(f"R{driver.major} ({m.label}): branch already known")
        else:
            out.branches.append(
                {"branch": driver.major, "source": m.source,
                 "note": f"imported from {m.file}" + (f" (released {m.released})" if m.released else "")}
            )
            known_branches.add(driver.major)
        for cuda in m.compat_cuda:
            pending = next((r for r in out.releases if CudaVersion(r["version"]).key[:2] == cuda.key[:2]), None)
            if pending is not None and "min_driver" not in pending:
                pending.update(driver_branch=driver.major, note=f"cuda-compat for {cuda} is built from {m.label}")
            elif cuda.key[:2] in known_minor:
                out.notes.append(f"CUDA {cuda} (cuda-compat of {m.label}): already known")
            else:
                out.releases.append(
                    {"version": f"{cuda}.0", "label": f"CUDA {cuda}", "driver_branch": driver.major,
                     "source": m.source,
                     "note": f"NVIDIA builds cuda-compat for CUDA {cuda} from driver {m.label}, the driver matching "
                     "that release"}
                )
                known_minor.add(cuda.key[:2])
    return out


def merged_site(existing: dict[str, Any], add: Additions) -> dict[str, Any]:
    """The site file's content with the additions appended (a new dict; ``existing`` is not changed)."""
    site = {**existing, "version": existing.get("version", 1)}
    if add.date is not None:
        site["date"] = max(str(existing.get("date") or add.date), add.date)
    if add.releases:
        cuda = dict(site.get("cuda") or {})
        cuda["releases"] = [*(cuda.get("releases") or []), *add.releases]
        site["cuda"] = cuda
    if add.branches:
        drivers = dict(site.get("drivers") or {})
        drivers["branches"] = [*(drivers.get("branches") or []), *add.branches]
        site["drivers"] = drivers
    return site
