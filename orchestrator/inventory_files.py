"""Inventory files checked before Ansible reads them: the same bounds as every other input.

``ansible-inventory`` would block on a FIFO, read ``/dev/zero`` forever, expand a YAML alias bomb in a host
variable and merge duplicate keys with a warning; here each of those is one line naming the file instead.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from orchestrator.adapters.inventory_cache import cache_dir
from orchestrator.errors import InventoryError
from orchestrator.loading import MAX_DEPTH, MAX_INT, MAX_NODES, MAX_YAML_BYTES, decode, parse_yaml, read_bytes

MAX_FILES = 10_000
MAX_LEVELS = 16
MAX_TOTAL_BYTES = 64 * 1024 * 1024
# Files Ansible's inventory loader skips (its INVENTORY_IGNORE_EXTS and hidden files): not read here either.
_SKIPPED = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry")
_YAML = (".yml", ".yaml", ".json")


def check_inventory_files(path: Path) -> None:
    """Every file of an inventory (a file or a folder tree) is regular, bounded, UTF-8 and sane YAML."""
    try:
        info = path.stat()
    except OSError:
        return  # the caller says "inventory not found"; an Ansible host list ("a,b,") is no file either
    files = _walk(path) if stat.S_ISDIR(info.st_mode) else [(path, False)]
    total = 0
    for file, in_vars in files:
        total += _check_file(path, file, in_vars)
        if total > MAX_TOTAL_BYTES:
            raise InventoryError(str(path), f"inventory larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB in all")


def _walk(root: Path) -> list[tuple[Path, bool]]:
    out: list[tuple[Path, bool]] = []
    todo: list[tuple[Path, int, bool]] = [(root, 0, False)]
    seen: set[tuple[int, int]] = set()
    while todo:
        folder, level, in_vars = todo.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue  # a symlinked folder loop
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise InventoryError(str(folder), f"cannot read inventory folder ({exc.strerror or exc})") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                mode = child.stat().st_mode
            except OSError as exc:
                raise InventoryError(str(child), f"cannot read inventory file ({exc.strerror or exc})") from None
            if stat.S_ISDIR(mode):
                if level + 1 > MAX_LEVELS:
                    raise InventoryError(str(child), f"inventory folders nested more than {MAX_LEVELS} deep")
                todo.append((child, level + 1, in_vars or entry.name in ("group_vars", "host_vars")))
            else:
                out.append((child, in_vars))
            if len(out) > MAX_FILES:
                raise InventoryError(str(root), f"more than {MAX_FILES} files in the inventory folder")
    return out


def _check_file(root: Path, file: Path, in_vars: bool) -> int:
    """Bytes read; raises InventoryError naming the file for anything Ansible should not be given."""
    if file.name.endswith(_SKIPPED) and file != root:
        return 0
    data = read_bytes(file, InventoryError, "inventory file", limit=MAX_YAML_BYTES)
    if os.access(file, os.X_OK) and not in_vars and data.startswith(b"#!"):
        return len(data)  # a dynamic inventory script: Ansible runs it, its output is checked after
    text = decode(data, str(file), InventoryError, "inventory file")
    if in_vars or file.suffix in _YAML or _looks_like_yaml(text):
        _parse_once(data, text, file)
    return len(data)


def _looks_like_yaml(text: str) -> bool:
    """An inventory file without a suffix is YAML when its first line that says anything is not INI."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        return not stripped.startswith("[") and stripped.endswith(":")
    return False


# What a file passed, by its content: a 10,000-host inventory takes seconds to walk, and is re-read by every command.
_CHECK_VERSION = f"yaml-bounds-1:{MAX_DEPTH}:{MAX_NODES}:{MAX_INT}:{MAX_YAML_BYTES}".encode()


def _parse_once(data: bytes, text: str, file: Path) -> None:
    """parse_yaml's checks, skipped for content that passed them before (a marker named by its sha256)."""
    marker = cache_dir() / "checked" / hashlib.sha256(_CHECK_VERSION + b"\0" + data).hexdigest()
    if marker.exists():
        return
    parse_yaml(text, str(file), InventoryError)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        return  # a cache that cannot be written is skipped, never an error
