"""Version types for each component of the GPU stack, parsed from the strings real tools print.

Each type keeps the text it was given (so pins and messages show what the user wrote) and compares by a
numeric key, so ``DriverVersion("580.159.04") > DriverVersion("535.183.01")`` and
``CudaVersion("12.8") == CudaVersion("12.8.0")``. In pydantic models they validate from strings and
serialise back to the same string.

Example::

    >>> NcclVersion("2.21.5-1+cuda12.4").cuda
    CudaVersion('12.4')
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Any, ClassVar, Self

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from orchestrator.errors import VersionError

_EPOCH = re.compile(r"^\d+:")
_PACKAGE_CHARS = re.compile(r"^[A-Za-z0-9.+~_-]+$")


@total_ordering
class _Version:
    """Shared machinery: parse once, compare by ``key``, validate and serialise in pydantic."""

    kind: ClassVar[str] = "version"
    expected: ClassVar[str] = ""
    __slots__ = ("_hash", "key", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise VersionError(self.kind, repr(text), f"a string such as {self.expected}")
        cleaned = text.strip()
        key = self._parse(cleaned)
        if key is None:
            raise VersionError(self.kind, text, self.expected)
        self.text = cleaned
        self.key: tuple[int, ...] = key
        self._hash = hash((type(self).__name__, key))  # versions key every plan cache: hash once

    def _parse(self, text: str) -> tuple[int, ...] | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Version)
        return self.key == other.key

    def __lt__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Version)
        return self.key < other.key

    @property
    def major(self) -> int:
        return self.key[0]

    @classmethod
    def _coerce(cls, value: Any) -> Self:
        if isinstance(value, cls):
            return value
        if isinstance(value, float):
            # YAML reads `cuda: 12.10` as the number 12.1; refuse rather than guess.
            raise VersionError(
                cls.kind, repr(value), f"a quoted string such as '{cls.expected}' (YAML turned it into a number)"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.from_int(value)
        if not isinstance(value, str):
            raise VersionError(cls.kind, repr(value), f"a string such as {cls.expected}")
        return cls(value)

    @classmethod
    def from_int(cls, value: int) -> Self:
        raise VersionError(cls.kind, str(value), f"a string such as {cls.expected}")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._coerce, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "description": f"{cls.kind} version, e.g. {cls.expected}"}


def _ints(parts: list[str]) -> tuple[int, ...]:
    return tuple(int(p) for p in parts)


class DriverVersion(_Version):
    """NVIDIA Linux driver, e.g. ``580.159.04`` or ``535.183.01``; its branch is the major number (R580).

    Package forms compare as their upstream version: ``580.95.05-1``, ``3:580.95.05-1.el9``,
    ``580.95.05-0ubuntu0.24.04.1`` all equal ``580.95.05`` (the text is kept as given).
    """

    kind = "driver"
    expected = "580.159.04"
    _re = re.compile(r"^(\d{3})\.(\d{1,3})(?:\.(\d{1,3}))?$")

    def _parse(self, text: str) -> tuple[int, ...] | None:
        m = self._re.match(_upstream(text))
        if not m:
            return None
        return _ints([g or "0" for g in m.groups()])

    @property
    def branch(self) -> str:
        return f"R{self.major}"

    @classmethod
    def from_package(cls, package_version: str) -> DriverVersion:
        """``580.95.05-0ubuntu1`` / ``3:580.95.05-1.el9`` -> ``580.95.05``."""
        return cls(_upstream(package_version))


class CudaVersion(_Version):
    """CUDA toolkit or driver-API version: ``12.8``, ``12.8.1``, ``13.0``; ``13000`` as NVML reports it."""

    kind = "CUDA"
    expected = "12.8 or 12.8.1"
    _re = re.compile(r"^(\d{1,2})\.(\d{1,2})(?:\.(\d{1,3}))?$")

    def _parse(self, text: str) -> tuple[int, ...] | None:
        m = self._re.match(_upstream(text))
        if not m:
            return None
        return _ints([g or "0" for g in m.groups()])

    @classmethod
    def from_int(cls, value: int) -> CudaVersion:
        """NVML / cudaDriverGetVersion encode 13.0 as 13000 and 12.8 as 12080."""
        if value < 1000:
            raise VersionError(cls.kind, str(value), "an integer such as 12080 (12.8)")
        return cls(f"{value // 1000}.{(value % 1000) // 10}")

    @property
    def minor(self) -> int:
        return self.key[1]

    @property
    def major_minor(self) -> CudaVersion:
        return CudaVersion(f"{self.key[0]}.{self.key[1]}")


class CudnnVersion(_Version):
    """cuDNN: ``9.19.0.56``, ``9.5.1``, ``8.9.7.29``; PyTorch reports 9.19.0 as ``91900``."""

    kind = "cuDNN"
    expected = "9.19.0.56"
    _re = re.compile(r"^(\d{1,2})\.(\d{1,2})(?:\.(\d{1,3}))?(?:\.(\d{1,4}))?$")

    def _parse(self, text: str) -> tuple[int, ...] | None:
        m = self._re.match(_upstream(text).split("+")[0])
        if not m:
            return None
        return _ints([g or "0" for g in m.groups()[:3]])

    @classmethod
    def from_int(cls, value: int) -> CudnnVersion:
        """cuDNN >= 9 encodes major*10000 + minor*100 + patch; cuDNN 8 used major*1000 + minor*100 + patch."""
        if value >= 90000:
            return cls(f"{value // 10000}.{(value % 10000) // 100}.{value % 100}")
        if value >= 1000:
            return cls(f"{value // 1000}.{(value % 1000) // 100}.{value % 100}")
        raise VersionError(cls.kind, str(value), "an integer such as 91900 (9.19.0)")


class NcclVersion(_Version):
    """NCCL: ``2.28.9``, or Debian/RPM ``2.21.5-1+cuda12.4`` which also names the CUDA it was built for."""

    kind = "NCCL"
    expected = "2.28.9 or 2.21.5-1+cuda12.4"
    __slots__ = ("cuda",)
    _re = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[\w.~]+?)?(?:\+cuda(\d+\.\d+))?$")

    def _parse(self, text: str) -> tuple[int, ...] | None:
        m = self._re.match(_EPOCH.sub("", text))
        if not m:
            # Other package forms (``2.28.9-1.el9``, ``2.28.9~rc1``): the upstream version, and the
            # CUDA build when the text names one.
            head = re.match(r"^(\d+)\.(\d+)\.(\d+)$", _upstream(text))
            if not head:
                return None
            built = _CUDA_TAG.search(text)
            self.cuda = CudaVersion(built.group(1)) if built else None
            return _ints(list(head.groups()))
        self.cuda = CudaVersion(m.group(4)) if m.group(4) else None
        return _ints(list(m.groups()[:3]))

    @classmethod
    def from_int(cls, value: int) -> NcclVersion:
        """``ncclGetVersion`` encodes 2.28.9 as 22809."""
        return cls(f"{value // 10000}.{(value % 10000) // 100}.{value % 100}")


class KernelVersion(_Version):
    """Linux kernel release as ``uname -r`` prints it: ``6.8.0-48-generic``, ``5.14.0-427.13.1.el9_4.x86_64``."""

    kind = "kernel"
    expected = "6.8.0-48-generic"
    _re = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?([-+.~_\w]*)$")

    def _parse(self, text: str) -> tuple[int, ...] | None:
        m = self._re.match(text)
        if not m:
            return None
        head = _ints([m.group(1), m.group(2), m.group(3) or "0"])
        # The distribution's ABI / build numbers order releases of the same upstream kernel.
        return head + tuple(int(n) for n in re.findall(r"\d+", m.group(4)))

    @property
    def flavour(self) -> str:
        """The trailing word of a Debian/Ubuntu release (``generic``, ``aws``); empty if none."""
        m = re.search(r"-([a-z][a-z0-9]*)$", self.text)
        return m.group(1) if m else ""


class ComponentVersion(_Version):
    """Any other dotted release (container toolkit ``1.17.8``, DCGM ``4.2.3``); accepts package versions.

    ``1:4.2.3-1`` (epoch, Debian revision) compares as ``4.2.3``; the text is kept as given for pinning.
    """

    kind = "component"
    expected = "1.17.8"
    # A dotted release, then at most a pre-release or build suffix (``~rc1``, ``+git``): nothing else.
    _re = re.compile(r"^(\d+(?:\.\d+){0,3})(?:[~+][A-Za-z0-9.~+]*)?$")

    def _parse(self, text: str) -> tuple[int, ...] | None:
        m = self._re.match(_upstream(text))
        if not m:
            return None
        return _ints(m.group(1).split("."))

    @property
    def upstream(self) -> str:
        return ".".join(str(p) for p in self.key)


_CUDA_TAG = re.compile(r"cuda(\d+\.\d+)")
_DIST_TAG = re.compile(r"\.(?=[A-Za-z]).*$")


def _upstream(package_version: str) -> str:
    """The upstream part of a Debian/RPM package version.

    Strips the epoch (``3:``), the revision (``-1``, ``-1-2``, ``-0ubuntu1``), a local or build tag
    (``+cuda12.4``, ``~rc1``) and a distribution tag (``.el9``): ``1:4.2.3-1.el9`` -> ``4.2.3``.
    """
    text = _EPOCH.sub("", package_version.strip())
    if not _PACKAGE_CHARS.match(text):
        return text  # spaces, quotes, shell words: never a package version, so the caller's parse fails
    text = re.split(r"[-+~]", text, maxsplit=1)[0]
    return _DIST_TAG.sub("", text)


def upstream_of(package_version: str) -> str:
    """Public form of the epoch/revision stripping, for fact parsers."""
    return _upstream(package_version)
