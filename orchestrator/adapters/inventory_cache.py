"""Ansible's parse of a static inventory, kept by the inventory's content: ``ansible-inventory --list`` once.

Listing 10,000 hosts takes Ansible tens of seconds; the answer depends only on the inventory's files (the
inventory file or folder, its ``group_vars``/``host_vars``), the ``--limit``, the Ansible version and its
``ANSIBLE_*`` settings, so those make the key. An inventory that can change without its files changing (an
executable script, a YAML or JSON file naming an inventory ``plugin:``) is never cached. The cache lives in
``$XDG_CACHE_HOME/gpu-upgrade/inventory`` (``~/.cache`` by default); entries are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

VARS_DIRS = ("group_vars", "host_vars")
MAX_FILES = 20_000


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpu-upgrade" / "inventory"


def _files(source: Path) -> list[Path] | None:
    """Every file Ansible reads for this inventory; None when there are too many to hash."""
    roots = [source] if source.is_dir() else [source] + [source.parent / d for d in VARS_DIRS]
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            for folder, dirs, names in os.walk(root):
                dirs.sort()
                found.extend(Path(folder) / n for n in sorted(names))
                if len(found) > MAX_FILES:
                    return None
    return found


def _dynamic(path: Path, data: bytes) -> bool:
    """An executable script or an inventory plugin's configuration: its hosts come from elsewhere."""
    if os.access(path, os.X_OK):
        return True
    if path.suffix.lower() not in (".yml", ".yaml", ".json"):
        return False
    return any(line.startswith((b"plugin:", b'"plugin"', b"'plugin'")) or line.startswith(b'{"plugin"')
               for line in data.splitlines())


def cache_key(source: Path, limit: str | None, version: str) -> str | None:
    """sha256 of everything the listing depends on; None when the inventory must be asked every time."""
    files = _files(source)
    if files is None:
        return None
    digest = hashlib.sha256()
    for item in (str(source.resolve()), limit or "", version,
                 json.dumps(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_")))):
        digest.update(item.encode() + b"\0")
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if _dynamic(path, data):
            return None
        digest.update(str(path).encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def load(key: str) -> dict[str, Any] | None:
    try:
        data = json.loads((cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def store(key: str, data: dict[str, Any]) -> None:
    """Write the entry (temp file + rename); a cache that cannot be written is skipped, never an error."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, folder / f"{key}.json")
    except OSError:
        return
