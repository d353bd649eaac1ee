"""Inventory files are checked once per content: a big unchanged inventory is not re-parsed by every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import inventory_files
from orchestrator.errors import InventoryError


def test_an_unchanged_file_is_parsed_once_and_a_changed_one_again(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    parsed: list[str] = []
    real = inventory_files.parse_yaml

    def counting(text: str, where: str, error: type[InventoryError]) -> object:
        parsed.append(where)
        return real(text, where, error)

    monkeypatch.setattr(inventory_files, "parse_yaml", counting)
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    gpu-01: {upgrade_pool: a}\n")
    inventory_files.check_inventory_files(inv)
    inventory_files.check_inventory_files(inv)
    assert parsed == [str(inv)]
    inv.write_text("all:\n  hosts:\n    gpu-01: {upgrade_pool: a}\n    gpu-02: {upgrade_pool: a}\n")
    inventory_files.check_inventory_files(inv)
    assert parsed == [str(inv), str(inv)]


def test_a_bad_file_is_refused_every_time_never_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    gpu-01: {}\n    gpu-01: {}\n")
    for _ in range(2):
        with pytest.raises(InventoryError, match="duplicate key"):
            inventory_files.check_inventory_files(inv)


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    gpu-01: {}\n")
    inventory_files.check_inventory_files(inv)
    inventory_files.check_inventory_files(inv)
