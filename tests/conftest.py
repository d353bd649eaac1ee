"""Shared fixtures: real captures and a real sshd on a loopback address; the no-skip rule of .ci/run."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.lab import (
    fresh,  # noqa: F401  (the starting fleet again, for one test)
    lab,  # noqa: F401  (the one lab fixture for every test folder)
    lab_in_the_way,
)
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


NO_SKIP_ENV = "UPGRADE_TESTS_NO_SKIP"  # set by .ci/run: CI's machine can run every test


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A lab left up (by `upgrade lab demo --keep` or `upgrade lab up`) stops the run at once, saying what to do."""
    if any("lab" in getattr(item, "fixturenames", ()) for item in items):
        why = lab_in_the_way()
        if why:
            pytest.exit(why, returncode=2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under .ci/run a skipped lab, SSH, molecule or lint test is a failure: CI must run them all."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and os.environ.get(NO_SKIP_ENV)):
        return
    strict = {"lab", "ssh"} & {m.name for m in item.iter_markers()} or "lint" in item.name or "molecule" in item.name
    if strict:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {NO_SKIP_ENV} is set (.ci/run) and this machine must run it: {reason}"
