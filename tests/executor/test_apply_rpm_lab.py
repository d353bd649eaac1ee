"""`upgrade plan | apply | rollback` on the lab's RPM-family host: the plan names dnf and the packages that move
with NVIDIA's nvidia-open metapackage; real dnf installs the exact build, versionlock pins it, and the rollback
downgrades and pins the old build again; each driver step enables the branch's nvidia-driver module stream
(580-open, then 535-open again: the module is reset on each branch change). The .deb hosts beside it are
untouched (the plan is made with --limit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.executor.test_apply_lab import FAST, upgrade
from tests.support.lab import LabHandle, restarted

pytestmark = pytest.mark.lab
HOST = "gpu-rpm-01"
NEW, OLD = "3:580.95.05-1.el9", "3:535.183.01-1.el9"
PARTS = ("nvidia-open", "nvidia-driver", "kmod-nvidia-open-dkms")


@pytest.fixture()
def mixed(lab: LabHandle, tmp_path: Path) -> Iterator[LabHandle]:
    """A fresh mixed lab (six .deb hosts and one RPM host), put back to the usual six afterwards."""
    with restarted(lab, tmp_path, rpm=1) as handle:
        yield handle


def installed(lab: LabHandle) -> dict[str, str]:
    out = lab.ssh(HOST, "rpm -q --qf '%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE}\\n' " + " ".join(PARTS)).stdout
    return dict(line.split() for line in out.splitlines())


def streams(lab: LabHandle) -> list[str]:
    out = lab.ssh(HOST, "dnf -q module list --enabled nvidia-driver").stdout
    return [line.split()[1] for line in out.splitlines() if line.startswith("nvidia-driver ")]


def locks(lab: LabHandle) -> set[str]:
    return set(lab.ssh(HOST, "dnf -q versionlock list").stdout.split())


def test_rpm_host_upgrades_with_dnf_and_rolls_back_pinned(mixed: LabHandle, tmp_path: Path) -> None:
    desired = tmp_path / "desired.yaml"
    desired.write_text(yaml.safe_dump({"version": 1, "policy": {
        "canary": 1, "waves": ["100%"], "max_unavailable": 1, "soak": 0, "gates": ["dcgm-r1"],
        "failure_budget": {"per_wave": 0, "total": 0}, "drain": {"timeout": 120}},
        "pools": {"training-rpm": {"target": {"driver": "580.95.05", "kernel_module": "open"}}}}))
    plan_path = tmp_path / "rpm.plan.json"
    made = upgrade("plan", "-i", str(mixed.inventory), str(desired), "-l", HOST, "-o", str(plan_path),
                   "--output", "json")
    assert made.returncode == 0, made.stdout + made.stderr
    plan = json.loads(plan_path.read_text())
    steps = [s for lst in plan["step_lists"] for s in lst if s.get("component") == "driver"]
    assert steps and all(s["package"] == "nvidia-open" for s in steps)
    upgrade_step = next(s for s in steps if s["build"] == NEW)
    assert upgrade_step["vars"]["upgrade_host_package_manager"] == "dnf"
    assert upgrade_step["vars"]["upgrade_host_with_packages"] == "nvidia-driver,kmod-nvidia-open-dkms"
    assert upgrade_step["vars"]["upgrade_host_module_stream"] == "nvidia-driver:580-open"
    assert streams(mixed) == ["535-open"]
    deb_host = mixed.ssh("gpu-h100-01", "dpkg-query -W -f '${Version}' nvidia-driver-535").stdout

    applied = upgrade("apply", str(plan_path), "--wave", "canary", "--yes", "--output", "json", "--ignore-window",
                      "--state-dir", str(tmp_path / "state"), *FAST)
    result = json.loads(applied.stdout)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert result["hosts"][HOST]["state"] == "done", result
    assert installed(mixed) == dict.fromkeys(PARTS, NEW)
    assert {f"{p}-{NEW}.*" for p in PARTS} <= locks(mixed)
    assert streams(mixed) == ["580-open"]
    assert '"580.95.05"' in mixed.ssh(HOST, "cat /usr/share/nvidia/gpu-lab-driver.json").stdout
    # a locked host refuses an unplanned change: dnf names the versionlock exclusion
    refused = mixed.ssh(HOST, "dnf -y -q install nvidia-open-535.183.01-1.el9")
    assert refused.returncode != 0 and installed(mixed)["nvidia-open"] == NEW
    assert mixed.ssh("gpu-h100-01", "dpkg-query -W -f '${Version}' nvidia-driver-535").stdout == deb_host

    rolled = upgrade("rollback", str(plan_path), "--host", HOST, "--yes", "--output", "json",
                     "--state-dir", str(tmp_path / "state"), *FAST)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert json.loads(rolled.stdout)["hosts"][HOST]["state"] == "rolled_back"
    assert installed(mixed) == dict.fromkeys(PARTS, OLD)
    assert {f"{p}-{OLD}.*" for p in PARTS} <= locks(mixed) and not any(NEW in lock for lock in locks(mixed))
    assert streams(mixed) == ["535-open"]
    assert '"535.183.01"' in mixed.ssh(HOST, "cat /usr/share/nvidia/gpu-lab-driver.json").stdout
