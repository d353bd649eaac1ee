"""The no-skip rule of .ci/run: a lab, SSH, molecule or lint test that skips fails the run when CI says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import NO_SKIP_ENV

ROOT = Path(__file__).resolve().parents[1]
CASES = '''
import pytest

@pytest.mark.lab
def test_on_the_lab():
    pytest.skip("the lab needs root")

def test_ansible_lint_clean():
    pytest.skip("ansible-lint not installed")

def test_optional():
    pytest.skip("nothing to do here")
'''


def run_cases(tmp_path: Path, strict: bool) -> str:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
                                          "def pytest_configure(config):\n"
                                          "    config.addinivalue_line('markers', 'lab: lab')\n")
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if k != NO_SKIP_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if strict:
        env[NO_SKIP_ENV] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout


def test_under_ci_a_skipped_lab_or_lint_test_fails_naming_why(tmp_path: Path) -> None:
    out = run_cases(tmp_path, strict=True)
    assert "2 failed, 1 skipped" in out
    assert f"skipped, but {NO_SKIP_ENV} is set (.ci/run) and this machine must run it: " \
           "Skipped: the lab needs root" in out
    assert "FAILED test_cases.py::test_ansible_lint_clean" in out


def test_elsewhere_they_skip_with_their_reason(tmp_path: Path) -> None:
    out = run_cases(tmp_path, strict=False)
    assert "3 skipped" in out and "the lab needs root" in out
