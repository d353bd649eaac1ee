"""`upgrade gate --local`: one JSON document or table, exit 0/1 by the gates, 2 with one line on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.model.gates import GateResult

ROOT = Path(__file__).resolve().parents[2]


def upgrade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, check=False)


@pytest.mark.parametrize(("args", "line"), [
    (("gate",), "error: upgrade gate: give --local (hosts run the gates through the gate role in apply)\n"),
    (("gate", "--local", "--level", "7"), "error: upgrade gate: --level 7: give 1, 2 or 3\n"),
    (("gate", "--local", "--timeout", "0"), "error: upgrade gate: --timeout 0: give a number of seconds above 0\n"),
])
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], line: str) -> None:
    r = upgrade(*args)
    assert r.returncode == 2 and r.stderr == line and r.stdout == ""


def test_a_machine_whose_driver_does_not_load_fails_its_gate_with_the_reason(tmp_path: Path) -> None:
    # a libcuda.so.1 that is no library: what a host with a broken driver install has
    (tmp_path / "libcuda.so.1").write_text("not an ELF file\n")
    r = upgrade("gate", "--local", "--output", "json", env={"LD_LIBRARY_PATH": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    gate = GateResult.model_validate(json.loads(r.stdout))
    assert not gate.passed and gate.problems[0].startswith("CUDA probe driver: cannot load libcuda.so.1: ")
    assert gate.probe is not None and gate.probe.driver.seconds is not None and gate.seconds is not None
