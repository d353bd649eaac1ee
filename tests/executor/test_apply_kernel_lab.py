"""The kernel as a managed component, on the lab: `upgrade plan` with a target kernel names the kernel's packages
at one build (its image and the headers that DKMS builds the NVIDIA module against), `apply` installs and holds
them, checks before rebooting that the kernel booted next is the planned one with the driver's module, reboots and
verifies that the host runs it with the driver loaded; `rollback` removes the new kernel and boots the old one.

The lab cannot boot another kernel in a namespace: its boot stub boots the newest /boot/vmlinuz-* and shows that
release in /proc/sys/kernel/osrelease, loading the driver only when that kernel has an nvidia module (see
orchestrator/lab/assets/host/gpu-lab-init)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orchestrator.lab.catalogue import kernel_release_after, running_kernel
from tests.executor.test_apply_lab import FAST, upgrade
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab
HOST = "gpu-a100-01"


def kernel(lab: LabHandle) -> str:
    return lab.ssh(HOST, "cat /proc/sys/kernel/osrelease").stdout.strip()


def modules(lab: LabHandle) -> set[str]:
    """The precompiled module packages installed (dpkg status ``ii`` or held ``hi``)."""
    out = lab.ssh(HOST, "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' 'linux-modules-nvidia-*'").stdout
    return {p[0] for p in (line.split() for line in out.splitlines()) if len(p) > 1 and p[1][1:2] == "i"}


def held(lab: LabHandle) -> set[str]:
    return set(lab.ssh(HOST, "apt-mark showhold").stdout.split())


def test_kernel_upgrade_with_its_module_and_rollback(fresh: LabHandle, tmp_path: Path) -> None:
    old, new = running_kernel(), kernel_release_after(running_kernel())
    assert kernel(fresh) == old
    desired = tmp_path / "desired.yaml"
    desired.write_text(yaml.safe_dump({"version": 1, "policy": {
        "canary": 1, "waves": ["100%"], "max_unavailable": 1, "soak": 0, "gates": ["dcgm-r1"],
        "failure_budget": {"per_wave": 0, "total": 0}, "drain": {"timeout": 120}},
        "pools": {"inference": {"target": {"kernel": new}}}}))
    plan_path = tmp_path / "kernel.plan.json"
    made = upgrade("plan", "-i", str(fresh.inventory), str(desired), "-l", HOST, "-o", str(plan_path),
                   "--output", "json")
    assert made.returncode == 0, made.stdout + made.stderr
    plan = json.loads(plan_path.read_text())
    steps = [s for lst in plan["step_lists"] for s in lst]
    up = next(s for s in steps if s.get("component") == "kernel" and s["to_version"] == new)
    assert up["package"] == f"linux-image-{new}"
    assert up["vars"]["upgrade_host_with_packages"] == f"linux-headers-{new}"
    assert up["vars"]["upgrade_host_kernel_release"] == new
    reboot = next(s for s in steps if s["kind"] == "reboot" and s["vars"].get("reboot_expect_kernel") == new)
    assert reboot["needs"]
    back = next(s for s in steps if s.get("component") == "kernel" and s["to_version"] == old)
    assert back["vars"]["upgrade_host_kernel_remove"] == f"linux-image-{new},linux-headers-{new}"

    applied = upgrade("apply", str(plan_path), "--wave", "canary", "--yes", "--output", "json", "--ignore-window",
                      "--state-dir", str(tmp_path / "state"), *FAST)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["hosts"][HOST]["state"] == "done", applied.stdout
    assert kernel(fresh) == new
    assert {f"linux-image-{new}", f"linux-headers-{new}"} <= held(fresh)
    # the driver came up on the new kernel: DKMS (the headers' postinst) built its module for it
    assert fresh.ssh(HOST, "nvidia-smi --query-gpu=driver_version --format=csv,noheader").returncode == 0
    facts = upgrade("facts", "-i", str(fresh.inventory), "-l", HOST, "--output", "json")
    assert facts.returncode == 0, facts.stderr
    assert new in facts.stdout

    rolled = upgrade("rollback", str(plan_path), "--host", HOST, "--yes", "--output", "json",
                     "--state-dir", str(tmp_path / "state"), *FAST)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert json.loads(rolled.stdout)["hosts"][HOST]["state"] == "rolled_back", rolled.stdout
    assert kernel(fresh) == old
    assert fresh.ssh(HOST, f"dpkg-query -W linux-image-{new}").returncode != 0
    assert fresh.ssh(HOST, "nvidia-smi --query-gpu=driver_version --format=csv,noheader").returncode == 0



def test_a_host_on_precompiled_modules_moves_to_the_new_branchs_module_package_and_back(fresh: LabHandle,
                                                                                      tmp_path: Path) -> None:
    """Ubuntu archive, precompiled modules: the plan names the new branch's module package for the kernel the
    host runs at its exact build; apply installs and holds it beside the driver and the old branch's goes;
    rollback brings the old one back."""
    release = running_kernel()
    old_module, new_module = f"linux-modules-nvidia-535-{release}", f"linux-modules-nvidia-580-open-{release}"
    put = fresh.ssh(HOST, f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {old_module} && "
                          f"apt-mark hold {old_module}")
    assert put.returncode == 0, put.stdout + put.stderr
    desired = tmp_path / "desired.yaml"
    desired.write_text(yaml.safe_dump({"version": 1, "policy": {
        "canary": 1, "waves": ["100%"], "max_unavailable": 1, "soak": 0, "gates": ["dcgm-r1"],
        "failure_budget": {"per_wave": 0, "total": 0}, "drain": {"timeout": 120}},
        "pools": {"inference": {"target": {"driver": "580.95.05", "kernel_module": "open"}}}}))
    plan_path = tmp_path / "precompiled.plan.json"
    made = upgrade("plan", "-i", str(fresh.inventory), str(desired), "-l", HOST, "-o", str(plan_path),
                   "--output", "json")
    assert made.returncode == 0, made.stdout + made.stderr
    steps = [s for lst in json.loads(plan_path.read_text())["step_lists"] for s in lst]
    up = next(s for s in steps if s.get("component") == "driver" and s["to_version"] == "580.95.05")
    assert up["vars"]["upgrade_host_module_package"] == new_module
    assert up["vars"]["upgrade_host_module_version"].endswith("+580.95.05")

    applied = upgrade("apply", str(plan_path), "--wave", "canary", "--yes", "--output", "json", "--ignore-window",
                      "--state-dir", str(tmp_path / "state"), *FAST)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["hosts"][HOST]["state"] == "done", applied.stdout
    assert modules(fresh) == {new_module} and new_module in held(fresh)

    rolled = upgrade("rollback", str(plan_path), "--host", HOST, "--yes", "--output", "json",
                     "--state-dir", str(tmp_path / "state"), *FAST)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert json.loads(rolled.stdout)["hosts"][HOST]["state"] == "rolled_back", rolled.stdout
    assert modules(fresh) == {old_module} and old_module in held(fresh)
