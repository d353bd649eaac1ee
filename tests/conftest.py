"""Shared fixtures: real captures and a real sshd on a loopback address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import lab  # noqa: F401  (the one lab fixture for every test folder)
from tests.support.postgres import Postgres, start_postgres, stop_postgres
from tests.support.sshd import Sshd, sshd_available, start_sshd, stop_sshd

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "fixtures" / "real-gpu" / "h100-r580"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    reason = sshd_available()
    if reason:
        pytest.skip(reason)
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    stop_sshd(server)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL server for the session (tests take a database of their own from it)."""
    server = start_postgres()
    yield server
    stop_postgres(server)
