"""`molecule test` for the driver role's scenarios, as CI runs it (delegated driver, on the lab fleet).

The session's ``lab`` fixture brings the lab up once; the scenarios' create step reuses it and their destroy
step leaves it alone (they stop only a lab they started themselves).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.lab import LabHandle
from tests.support.tools import tool

pytestmark = pytest.mark.lab
ROLE = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "upgrade_driver"


@pytest.mark.parametrize("scenario", ["default", "rollback"])
def test_molecule_scenario(lab: LabHandle, scenario: str) -> None:
    proc = subprocess.run([tool("molecule"), "test", "-s", scenario], cwd=ROLE, capture_output=True, text=True,
                          timeout=900, check=False, env={**os.environ, "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert lab.lab.is_up()  # the scenario's destroy left the session's lab alone
