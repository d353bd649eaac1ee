"""Entry playbooks on the lab fleet through the executor's path (``run_playbook``): the extra-vars contract,
the set_stats results, idempotence, rollback, gates with injected faults, and the Slurm and bare-host drains.

Each test uses its own hosts (molecule uses gpu-h100-04 and gpu-v100-01) and clears its faults in ``finally``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from orchestrator.adapters.ansible import PlaybookResult, gate_result, run_playbook, stats
from orchestrator.lab import slurm
from orchestrator.lab.faults import Fault
from orchestrator.run.stragglers import judge_wave
from tests.support.lab import LabHandle

pytestmark = pytest.mark.lab


def play(lab: LabHandle, playbook: str, host: str, **extra: Any) -> PlaybookResult:
    return run_playbook(playbook, lab.inventory, limit=host, extravars=extra)


def changed(result: PlaybookResult) -> list[str]:
    return [t.task for t in result.tasks if t.changed]


def selections(lab: LabHandle, host: str) -> dict[str, str]:
    out = lab.ssh(host, "dpkg --get-selections").stdout
    return {p[0]: p[1] for p in (line.split() for line in out.splitlines()) if len(p) == 2}


def test_upgrade_and_rollback_a_library(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    up = play(lab, "upgrade_host.yml", host, upgrade_host_component="nccl", upgrade_host_version="2.21.5-1+cuda12.4")
    assert up.status == "successful", up.host_messages(host)
    report = stats(up, host, "gpu_upgrade")
    assert report is not None
    assert {k: report[k] for k in ("component", "name", "version", "changed", "direction")} == {
        "component": "nccl", "name": "libnccl2", "version": "2.21.5-1+cuda12.4", "changed": True,
        "direction": "upgrade"}
    assert selections(lab, host)["libnccl2"] == "hold"
    recorded = json.loads(lab.ssh(host, "cat /var/lib/gpu-fleet-upgrade/installed.json").stdout)
    assert recorded["libnccl2"] == "2.21.5-1+cuda12.4" and recorded["nvidia-driver-535"] == "535.183.01-0ubuntu1"
    assert '"linux-";' in lab.ssh(host, "cat /etc/apt/apt.conf.d/51gpu-fleet-upgrade").stdout

    again = play(lab, "upgrade_host.yml", host, upgrade_host_component="nccl", upgrade_host_version="2.21.5-1+cuda12.4")
    assert again.status == "successful" and changed(again) == []

    back = play(lab, "upgrade_host.yml", host, upgrade_host_component="nccl", upgrade_host_version="2.18.5-1+cuda12.2")
    assert back.status == "successful", back.host_messages(host)
    report = stats(back, host, "gpu_upgrade")
    assert report is not None and report["direction"] == "upgrade"  # a rollback step is upgrade_host.yml downwards
    assert report["previous"] == "2.21.5-1+cuda12.4" and report["version"] == "2.18.5-1+cuda12.2"
    assert lab.ssh(host, "dpkg-query -W -f '${Version}' libnccl2").stdout == "2.18.5-1+cuda12.2"
    assert selections(lab, host)["libnccl2"] == "hold"


def test_bad_extra_vars_and_a_failed_install_are_results(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    missing = play(lab, "upgrade_host.yml", host, upgrade_host_component="nccl")
    assert missing.status == "failed" and "upgrade_host_version" in " ".join(missing.host_messages(host))
    lab.lab.inject(host, Fault.INSTALL_FAILS, packages=("nvidia-container-toolkit",))
    try:
        bad = play(lab, "upgrade_host.yml", host, upgrade_host_component="container_toolkit",
                   upgrade_host_version="1.17.8-1")
        assert bad.status == "failed"
        assert stats(bad, host, "gpu_upgrade") is None
        assert lab.ssh(host, "dpkg-query -W -f '${Version}' nvidia-container-toolkit").stdout == "1.14.6-1"
    finally:
        lab.lab.clear(host, Fault.INSTALL_FAILS)


def test_driver_upgrade_reboots_verifies_and_rolls_back(lab: LabHandle) -> None:
    host = "gpu-h100-01"
    boot = lab.boot_id(host)
    # the fabric manager at the exact build the caller names (plans change it in its own step)
    up = play(lab, "upgrade_host.yml", host, upgrade_host_component="driver",
              upgrade_host_version="580.95.05-0ubuntu1", upgrade_host_kernel_module="open",
              upgrade_driver_fabric_manager_version="580.95.05-1")
    assert up.status == "successful", up.host_messages(host)
    report = stats(up, host, "gpu_upgrade")
    assert report is not None
    assert {k: report[k] for k in ("package", "previous", "removed", "flavor", "rebooted", "verified")} == {
        "package": "nvidia-driver-580-open", "previous": "535.183.01-0ubuntu1", "removed": ["nvidia-driver-535"],
        "flavor": "open", "rebooted": True, "verified": True}
    assert lab.boot_id(host) != boot
    sel = selections(lab, host)
    assert sel["nvidia-driver-580-open"] == "hold" and sel["nvidia-fabricmanager-580"] == "hold"

    gate = play(lab, "gate.yml", host, gate_level=1, gate_expect_driver="580.95.05-0ubuntu1",
                gate_expect_packages={"nvidia-driver-580-open": "580.95.05-0ubuntu1",
                                      "nvidia-fabricmanager-580": "580.95.05-1"})
    result = gate_result(gate, host)
    assert gate.status == "successful" and result is not None and result.passed, result
    assert result.versions is not None and result.versions.driver_found == ["580.95.05"]
    assert len(result.health) == 8 and result.health[0].clock_event_reasons == ["gpu_idle"]

    boot = lab.boot_id(host)
    again = play(lab, "upgrade_host.yml", host, upgrade_host_component="driver",
                 upgrade_host_version="580.95.05-0ubuntu1", upgrade_host_kernel_module="open",
                 upgrade_driver_fabric_manager_version="580.95.05-1")
    assert again.status == "successful" and changed(again) == [] and lab.boot_id(host) == boot

    back = play(lab, "upgrade_host.yml", host, upgrade_host_component="driver",
                upgrade_host_version="535.183.01-0ubuntu1", upgrade_host_kernel_module="proprietary",
                upgrade_driver_fabric_manager_version="535.183.01-1")
    assert back.status == "successful", back.host_messages(host)
    smi = lab.ssh(host, "nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    assert smi.stdout.split()[0] == "535.183.01"
    sel = selections(lab, host)
    assert sel["nvidia-driver-535"] == "hold" and sel["nvidia-fabricmanager-535"] == "hold"
    # removed: its postrm (the persistence daemon's init script links) keeps it in dpkg's config-files state,
    # as real packages with maintainer scripts stay until purged
    assert sel.get("nvidia-driver-580-open", "deinstall") == "deinstall"
    status = lab.ssh(host, "dpkg-query -W -f '${db:Status-Abbrev}' nvidia-driver-580-open").stdout
    assert status.strip() == "rc", status


def test_gates_report_failures_and_the_straggler_figure(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    ok = play(lab, "gate.yml", host, gate_level=2, gate_expect_driver="535.183.01")
    good = gate_result(ok, host)
    assert ok.status == "successful" and good is not None and good.passed
    assert good.figures["pcie_h2d_gbps"] == 25.0 and good.diag is not None and good.diag.dcgm_version == "3.3.9"
    # the CUDA probe ran through the lab's simulated libcuda: a checked launch and the host's own figures
    assert good.probe is not None and good.probe.driver.ok and good.figures["h2d_gbps"] == pytest.approx(25.0, rel=0.02)
    lab.lab.inject(host, Fault.DIAG_FAILS, gpu=1)
    lab.lab.inject(host, Fault.GPU_SLOW, factor=0.4)
    try:
        bad = play(lab, "gate.yml", host, gate_level=2, gate_expect_driver="580.95.05")
        assert bad.status == "failed"
        result = gate_result(bad, host)
        assert result is not None and not result.passed
        assert result.figures["pcie_h2d_gbps"] == pytest.approx(10.0)
        assert result.figures["h2d_gbps"] == pytest.approx(10.0, rel=0.02)  # the probe sees the slow GPU too
        assert "driver: planned 580.95.05, nvidia-smi reports 535.183.01" in result.problems
        assert "00000000:18:00.0: clocks slowed by hw_slowdown" in result.problems
        assert any(p.startswith("dcgmi diag Hardware/memory failed on GPU 1") for p in result.problems)
        verdicts = judge_wave("pcie_h2d_gbps", {host: result.figures["pcie_h2d_gbps"], "peer-1": 25.0, "peer-2": 24.5},
                              {host: good.figures["pcie_h2d_gbps"]}, threshold=0.8)
        assert verdicts[host].straggler and len(verdicts[host].reasons) == 2
        assert not verdicts["peer-1"].straggler
    finally:
        lab.lab.clear(host)


def node_state(lab: LabHandle, node: str) -> str:
    return lab.slurm("sinfo", "-h", "-n", node, "-o", "%T").strip()


def test_slurm_drain_waits_for_the_job_then_resumes(lab: LabHandle) -> None:
    node = "gpu-h100-02"
    conf = str(slurm.conf_path(lab.lab.paths))
    lab.lab.inject(node, Fault.BLOCKING_JOB, seconds=5)
    try:
        deadline = time.monotonic() + 10
        while node_state(lab, node) not in ("allocated", "mixed") and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.monotonic()
        drained = play(lab, "drain.yml", node, slurm_conf=conf, drain_poll_s=1, drain_reason="upgrade wave 1")
        assert drained.status == "successful", drained.host_messages(node)
        assert time.monotonic() - started > 2  # it waited for the job
        assert stats(drained, node, "gpu_drain") == {"scheduler": "slurm", "node": node, "action": "drained",
                                                     "changed": True, "state": "drained",
                                                     "detail": "reason upgrade wave 1", "host": node}
        again = play(lab, "drain.yml", node, slurm_conf=conf, drain_reason="upgrade wave 1")
        assert changed(again) == []
        back = play(lab, "uncordon.yml", node, slurm_conf=conf, drain_reason="upgrade wave 1")
        assert stats(back, node, "gpu_drain")["action"] == "resumed"  # type: ignore[index]
        assert node_state(lab, node) == "idle"
    finally:
        lab.lab.clear(node, Fault.BLOCKING_JOB)


def test_slurm_drain_timeout_is_a_failed_result_and_hand_drains_are_left_alone(lab: LabHandle) -> None:
    node, other = "gpu-h100-02", "gpu-h100-03"
    conf = str(slurm.conf_path(lab.lab.paths))
    lab.lab.inject(node, Fault.BLOCKING_JOB, seconds=60)
    lab.slurm("scontrol", "update", f"nodename={other}", "state=drain", "reason=bad fan")
    try:
        deadline = time.monotonic() + 15  # the job must be running, or the drain has nothing to wait for
        while node_state(lab, node) not in ("allocated", "mixed") and time.monotonic() < deadline:
            time.sleep(0.2)
        slow = play(lab, "drain.yml", node, slurm_conf=conf, drain_timeout_s=2, drain_poll_s=1)
        assert slow.status == "failed"
        failed = [t.task for t in slow.tasks if t.status == "failed"]
        assert failed == ["Wait until the node's jobs have finished (DRAINED)"]
        for playbook in ("drain.yml", "uncordon.yml"):
            result = play(lab, playbook, other, slurm_conf=conf)
            assert stats(result, other, "gpu_drain") == {
                "scheduler": "slurm", "node": other, "action": "left_alone", "state": "IDLE+DRAIN",
                "detail": "drained by hand: bad fan", "host": other}
        assert node_state(lab, other) == "drained"
    finally:
        lab.lab.clear(node, Fault.BLOCKING_JOB)
        lab.slurm("scontrol", "update", f"nodename={other}", "state=resume")
        play(lab, "uncordon.yml", node, slurm_conf=conf)


def test_slurm_uncordon_by_reboot_asap(lab: LabHandle) -> None:
    node = "gpu-h100-02"
    conf = str(slurm.conf_path(lab.lab.paths))
    assert play(lab, "drain.yml", node, slurm_conf=conf).status == "successful"
    boot = lab.boot_id(node)
    back = play(lab, "uncordon.yml", node, slurm_conf=conf, slurm_reboot_asap=True)
    assert back.status == "successful", back.host_messages(node)
    assert stats(back, node, "gpu_drain")["action"] == "rebooted_and_resumed"  # type: ignore[index]
    assert lab.boot_id(node) not in ("", boot)


def test_bare_host_drain_stops_services_and_waits_for_gpu_users(lab: LabHandle) -> None:
    host = "gpu-a100-01"
    hold = "setsid sh -c 'exec sleep {s} 3</usr/lib/x86_64-linux-gnu/libcuda.so.1' >/dev/null 2>&1 </dev/null &"
    lab.ssh(host, hold.format(s=60))
    try:
        slow = play(lab, "drain.yml", host, upgrade_scheduler="none", drain_timeout_s=2, drain_poll_s=1)
        assert slow.status == "failed"
        failed = next(t for t in slow.tasks if t.status == "failed")
        assert failed.task == "Wait until no process uses a GPU"
        assert failed.result["processes"][0]["comm"] == "sleep"
        assert failed.result["processes"][0]["paths"] == ["/usr/lib/x86_64-linux-gnu/libcuda.so.535.183.01"]
    finally:
        lab.ssh(host, "pkill -x sleep")
    lab.ssh(host, hold.format(s=3))
    drained = play(lab, "drain.yml", host, upgrade_scheduler="none", drain_poll_s=1)
    assert drained.status == "successful", drained.host_messages(host)
    assert stats(drained, host, "gpu_drain") == {"scheduler": "none", "node": host, "action": "drained",
                                                 "services_stopped": ["nvidia-dcgm", "nvidia-persistenced"],
                                                 "gpu_processes": [], "host": host}
    assert lab.ssh(host, "/etc/init.d/nvidia-dcgm status").returncode == 3
    assert lab.ssh(host, "/etc/init.d/nvidia-persistenced status").returncode == 3
    back = play(lab, "uncordon.yml", host, upgrade_scheduler="none")
    started = stats(back, host, "gpu_drain")["services_started"]  # type: ignore[index]
    assert started == ["nvidia-dcgm", "nvidia-persistenced"]
    assert lab.ssh(host, "/etc/init.d/nvidia-dcgm status").returncode == 0
    assert lab.ssh(host, "/etc/init.d/nvidia-persistenced status").returncode == 0


def _running_dcgm(lab: LabHandle, host: str) -> str:
    """The version the running nv-hostengine started as (the simulated daemon writes it when it starts)."""
    return str(json.loads(lab.ssh(host, "cat /run/nvidia-dcgm.state").stdout)["version"])


def test_dcgm_change_restarts_the_host_engine_on_the_new_binary(lab: LabHandle) -> None:
    host = "gpu-h100-02"
    try:
        up = play(lab, "upgrade_host.yml", host, upgrade_host_component="dcgm", upgrade_host_version="1:4.2.3-1")
        assert up.status == "successful", up.host_messages(host)
        assert _running_dcgm(lab, host) == "4.2.3"
        # an upgrade behind the role's back: the package changes, the running daemon keeps the old binary
        by_hand = lab.ssh(host, "apt-get install -y -q --allow-change-held-packages "
                                "datacenter-gpu-manager-4-core=1:4.4.1-1", timeout=120)
        assert by_hand.returncode == 0, by_hand.stderr
        assert _running_dcgm(lab, host) == "4.2.3"
        probe = lab.ansible(host, "gpu_fleet.upgrade.upgrade_service_binary",
                            "process=nv-hostengine binary=/usr/bin/nv-hostengine")
        found = json.loads(probe.stdout.split("=>", 1)[1])
        assert found["running"] and found["stale"] == found["pids"] != [], found
        # the role converges: the package is already there, the stale daemon is restarted all the same
        fix = play(lab, "upgrade_host.yml", host, upgrade_host_component="dcgm", upgrade_host_version="1:4.4.1-1")
        assert fix.status == "successful", fix.host_messages(host)
        assert "Note a host engine to restart" in changed(fix) and _running_dcgm(lab, host) == "4.4.1"
        again = play(lab, "upgrade_host.yml", host, upgrade_host_component="dcgm", upgrade_host_version="1:4.4.1-1")
        assert again.status == "successful" and changed(again) == []
        # a downgrade of the same package restarts it through the handler
        down = play(lab, "upgrade_host.yml", host, upgrade_host_component="dcgm", upgrade_host_version="1:4.2.3-1")
        assert down.status == "successful", down.host_messages(host)
        assert "Restart the DCGM host engine" in changed(down) and _running_dcgm(lab, host) == "4.2.3"
    finally:
        back = play(lab, "upgrade_host.yml", host, upgrade_host_component="dcgm", upgrade_host_version="1:3.3.9")
        assert back.status == "successful", back.host_messages(host)
    assert _running_dcgm(lab, host) == "3.3.9"


def test_no_reboot_into_a_kernel_without_the_planned_drivers_module(lab: LabHandle) -> None:
    """A kernel update that nothing built the NVIDIA module for (the lab's linux-image-*-gpulab package) is
    booted next: the reboot step fails before rebooting, naming the host, the kernel and what is missing."""
    from orchestrator.lab.catalogue import kernel_update

    host, kernel_pkg = "gpu-a100-01", kernel_update().name
    release = kernel_pkg.removeprefix("linux-image-")
    driver = {"upgrade_host_component": "driver", "upgrade_host_version": "580.95.05-0ubuntu1",
              "upgrade_host_kernel_module": "proprietary", "upgrade_host_reboot": False}
    try:
        up = play(lab, "upgrade_host.yml", host, **driver)
        assert up.status == "successful", up.host_messages(host)
        modinfo = lab.ssh(host, "modinfo -F version /lib/modules/$(uname -r)/updates/dkms/nvidia.ko")
        assert modinfo.stdout.strip() == "580.95.05"  # the real modinfo reads the package's module
        installed = lab.ssh(host, f"apt-get install -y -q {kernel_pkg}", timeout=120)
        assert installed.returncode == 0, installed.stderr
        boot = lab.boot_id(host)
        refused = play(lab, "reboot.yml", host, reboot_expect_driver="580.95.05", reboot_expect_flavor="proprietary")
        assert refused.status == "failed" and lab.boot_id(host) == boot
        line = f"{host}: kernel {release} (booted next) has no nvidia module, not driver 580.95.05"
        assert any(line in m for m in refused.host_messages(host)), refused.host_messages(host)
        removed = lab.ssh(host, f"apt-get remove -y -q {kernel_pkg}", timeout=120)
        assert removed.returncode == 0, removed.stderr
        rebooted = play(lab, "reboot.yml", host, reboot_expect_driver="580.95.05", reboot_expect_flavor="proprietary")
        assert rebooted.status == "successful", rebooted.host_messages(host)
        assert lab.boot_id(host) != boot
    finally:
        lab.ssh(host, f"apt-get remove -y -q {kernel_pkg}", timeout=120)
        back = play(lab, "upgrade_host.yml", host, **{**driver, "upgrade_host_version": "535.183.01-0ubuntu1",
                                                     "upgrade_host_reboot": True})
        assert back.status == "successful", back.host_messages(host)



def _persistenced(lab: LabHandle, host: str) -> tuple[str, str]:
    """(pid, driver version) of the running nvidia-persistenced, as the simulated daemon wrote them when it started."""
    pid = lab.ssh(host, "cat /run/nvidia-persistenced.pid").stdout.strip()
    state = json.loads(lab.ssh(host, "cat /run/nvidia-persistenced.state").stdout)
    assert lab.ssh(host, f"kill -0 {pid}").returncode == 0, f"nvidia-persistenced {pid} is not running"
    return pid, str(state["version"])


def _persistenced_binary(lab: LabHandle, host: str) -> dict[str, Any]:
    probe = lab.ansible(host, "gpu_fleet.upgrade.upgrade_service_binary",
                        "process=nvidia-persistenced binary=/usr/bin/nvidia-persistenced")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    found: dict[str, Any] = json.loads(probe.stdout.split("=>", 1)[1])
    return found


def test_driver_change_restarts_persistenced_on_the_new_binary_once_its_module_is_loaded(lab: LabHandle) -> None:
    """The driver package replaces nvidia-persistenced and leaves the running one alone. Against the old kernel
    module the new binary fails (NVRM: API mismatch), so before the reboot the old daemon is left running; a
    reboot starts the new one; with the installed driver loaded, a replaced binary is restarted by the handler."""
    host = "gpu-a100-01"
    driver = {"upgrade_host_component": "driver", "upgrade_host_kernel_module": "proprietary"}
    assert _persistenced(lab, host)[1] == "535.183.01"  # the package enables it, the host starts it at boot
    try:
        up = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.82.07-0ubuntu1")
        assert up.status == "successful", up.host_messages(host)
        report = stats(up, host, "gpu_upgrade")
        assert report is not None and report["rebooted"] is True and report["persistenced_restarted"] is False
        old_pid, version = _persistenced(lab, host)
        assert version == "580.82.07"  # started fresh by the reboot

        # an upgrade behind the role's back (same package, so its prerm leaves the daemon running)
        by_hand = lab.ssh(host, "apt-get install -y -q --allow-change-held-packages "
                                "nvidia-driver-580=580.95.05-0ubuntu1", timeout=120)
        assert by_hand.returncode == 0, by_hand.stderr
        assert _persistenced(lab, host) == (old_pid, "580.82.07")
        found = _persistenced_binary(lab, host)
        assert found["running"] and found["stale"] == found["pids"] == [int(old_pid)], found

        # reboot off, the old module still loaded: the new binary cannot start, the old daemon is left running
        mismatch = lab.ssh(host, "/usr/bin/nvidia-persistenced --user nvidia-persistenced")
        assert mismatch.returncode == 1 and "API mismatch" in mismatch.stderr, mismatch.stderr
        skipped = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.95.05-0ubuntu1",
                       upgrade_host_reboot=False)
        assert skipped.status == "successful", skipped.host_messages(host)
        report = stats(skipped, host, "gpu_upgrade")
        assert report is not None
        assert report["reboot_required"] is True and report["persistenced_restarted"] is False, report
        assert "Note a persistence daemon to restart" not in changed(skipped)
        assert _persistenced(lab, host) == (old_pid, "580.82.07")

        # the reboot starts the new daemon: nothing left to restart
        rebooted = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.95.05-0ubuntu1")
        assert rebooted.status == "successful", rebooted.host_messages(host)
        report = stats(rebooted, host, "gpu_upgrade")
        assert report is not None and report["rebooted"] is True and report["persistenced_restarted"] is False
        old_pid, version = _persistenced(lab, host)
        assert version == "580.95.05" and _persistenced_binary(lab, host)["stale"] == []

        # the package's binary replaced under the running daemon, its module loaded: the handler restarts it
        time.sleep(1.2)  # the module's start-time comparison has one second of slack
        again_by_hand = lab.ssh(host, "apt-get install -y -q --reinstall --allow-change-held-packages "
                                      "nvidia-driver-580=580.95.05-0ubuntu1", timeout=120)
        assert again_by_hand.returncode == 0, again_by_hand.stderr
        found = _persistenced_binary(lab, host)
        assert found["stale"] == found["pids"] == [int(old_pid)], found
        boot = lab.boot_id(host)
        fix = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.95.05-0ubuntu1")
        assert fix.status == "successful", fix.host_messages(host)
        assert {"Note a persistence daemon to restart", "Restart the NVIDIA persistence daemon"} <= set(changed(fix))
        report = stats(fix, host, "gpu_upgrade")
        assert report is not None and report["persistenced_restarted"] is True and report["rebooted"] is False
        assert lab.boot_id(host) == boot
        new_pid, version = _persistenced(lab, host)
        assert new_pid != old_pid and version == "580.95.05"
        found = _persistenced_binary(lab, host)
        assert found["running"] and found["pids"] == [int(new_pid)] and found["stale"] == [], found

        again = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.95.05-0ubuntu1")
        assert again.status == "successful" and changed(again) == []
        assert _persistenced(lab, host)[0] == new_pid
    finally:
        back = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="535.183.01-0ubuntu1")
        assert back.status == "successful", back.host_messages(host)
    assert _persistenced(lab, host)[1] == "535.183.01"


def test_driver_pinning_package_goes_in_before_the_driver_and_out_when_the_plan_names_none(lab: LabHandle) -> None:
    """NVIDIA's CUDA repository on apt from 590: the plan's pinning package is installed and held with the
    driver, another branch's goes; a driver step that names none takes the pinning packages away."""
    host = "gpu-v100-01"
    driver = {"upgrade_host_component": "driver", "upgrade_host_kernel_module": "proprietary"}
    try:
        hand = lab.ssh(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nvidia-driver-pinning-535 && "
                             "apt-mark hold nvidia-driver-pinning-535", timeout=120)
        assert hand.returncode == 0, hand.stderr
        up = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.95.05-0ubuntu1",
                  upgrade_host_reboot=False, upgrade_host_pinning_package="nvidia-driver-pinning-580.95.05",
                  upgrade_host_pinning_version="580.95.05-1")
        assert up.status == "successful", up.host_messages(host)
        pins = {k: v for k, v in selections(lab, host).items() if k.startswith("nvidia-driver-pinning-")}
        assert pins == {"nvidia-driver-pinning-580.95.05": "hold"}, pins
        assert "Install and hold the driver pinning package (apt)" in [t.task for t in up.tasks]
        again = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="580.95.05-0ubuntu1",
                     upgrade_host_reboot=False, upgrade_host_pinning_package="nvidia-driver-pinning-580.95.05",
                     upgrade_host_pinning_version="580.95.05-1")
        assert again.status == "successful" and not [t for t in changed(again) if "pinning" in t.lower()], \
            changed(again)
    finally:
        back = play(lab, "upgrade_host.yml", host, **driver, upgrade_host_version="535.183.01-0ubuntu1")
        assert back.status == "successful", back.host_messages(host)
    assert not [k for k in selections(lab, host) if k.startswith("nvidia-driver-pinning-")]
