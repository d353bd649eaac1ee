"""The lab's RPM-family host: real rpm and dnf (Debian's packages) with the lab's copy of NVIDIA's CUDA
repository for RHEL 9; ``ansible.builtin.dnf`` installs, is refused by a versionlock, downgrades and removes; the
repository's nvidia-driver module streams select the branch (modular filtering hides the others), and the driver
step enables the planned stream, resetting the module on a branch change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.adapters.ansible import PlaybookResult, run_playbook
from orchestrator.adapters.facts import collect_live
from orchestrator.adapters.inventory import load_inventory
from orchestrator.hostside.collector import parse_os_release, rpm_family
from orchestrator.lab.catalogue import running_kernel
from orchestrator.model.fleet import build_fleet
from orchestrator.model.stack import PackageSource
from tests.support.lab import LabHandle, restarted

pytestmark = pytest.mark.lab
HOST = "gpu-rpm-01"
# The dnf action plugin picks its backend from the pkg_mgr fact, which Ansible answers "apt" on a lab RPM host
# (apt-get exists on its Debian rootfs): "Could not detect which major revision of dnf is in use" (lab run,
# 2026-12-01). Real RHEL 9 hosts detect dnf4; the lab names it.
DNF4 = "use_backend=dnf4"


@pytest.fixture(scope="module")
def lab(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """The session's lab with one RPM-family host added (``lab up --rpm-hosts 1``), put back afterwards."""
    with restarted(lab, tmp_path_factory.mktemp("rpm-lab"), rpm=1) as handle:
        yield handle


def evr(lab: LabHandle, pkg: str) -> str:
    r = lab.ssh(HOST, f"rpm -q --qf '%{{EPOCH}}:%{{VERSION}}-%{{RELEASE}}' {pkg}")
    return r.stdout.strip() if r.returncode == 0 else "absent"


def smi_driver(lab: LabHandle) -> str:
    return lab.ssh(HOST, "cat /usr/share/nvidia/gpu-lab-driver.json").stdout


def enabled_streams(lab: LabHandle) -> list[str]:
    """The enabled streams of the nvidia-driver module, as ``dnf module list --enabled`` prints them."""
    out = lab.ssh(HOST, "dnf -q module list --enabled nvidia-driver").stdout
    return [line.split()[1] for line in out.splitlines() if line.startswith("nvidia-driver ")]


def switch_stream(lab: LabHandle, stream: str) -> None:
    r = lab.ssh(HOST, f"dnf -y -q module reset nvidia-driver && dnf -y -q module enable nvidia-driver:{stream}")
    assert r.returncode == 0, r.stderr


def test_rpm_host_starts_on_its_driver_version_locked_and_says_rocky(lab: LabHandle) -> None:
    assert evr(lab, "nvidia-open") == "3:535.183.01-1.el9"
    assert evr(lab, "kmod-nvidia-open-dkms") == "3:535.183.01-1.el9"
    locked = lab.ssh(HOST, "dnf -q versionlock list").stdout
    assert "nvidia-open-3:535.183.01-1.el9.*" in locked, locked
    assert rpm_family(parse_os_release(lab.ssh(HOST, "cat /etc/os-release").stdout))
    assert '"535.183.01"' in smi_driver(lab)
    assert enabled_streams(lab) == ["535-open"]  # installed as NVIDIA's guide says: stream enabled, then dnf install
    # the repository's module metadata: a stream per branch and flavour
    streams = lab.ssh(HOST, "dnf -q module list nvidia-driver").stdout
    assert all(s in streams for s in ("535-open", "535-dkms", "580-open", "580-dkms")), streams
    # its NVIDIA packages are RPMs only: dpkg knows none of them
    assert lab.ssh(HOST, "dpkg-query -W 'nvidia-*'").returncode != 0


def test_dnf_installs_is_refused_by_versionlock_downgrades_and_removes(lab: LabHandle) -> None:
    new, old = "3:580.95.05-1.el9", "3:535.183.01-1.el9"
    # modular filtering: on the 535-open stream the other branches' builds are hidden
    r = lab.ssh(HOST, "dnf -q list --showduplicates nvidia-open")
    assert "535.183.01" in r.stdout and "580.95.05" not in r.stdout, r.stdout
    switch_stream(lab, "580-open")
    r = lab.ansible(HOST, "ansible.builtin.dnf", f"name=nvidia-open-580.95.05 state=present {DNF4}")
    assert r.returncode != 0 and evr(lab, "nvidia-open") == old, r.stdout  # versionlock refuses it
    assert "filtered out by exclude filtering" in r.stdout, r.stdout  # dnf names the versionlock exclusion
    r = lab.ansible(HOST, "ansible.builtin.command", "dnf -q versionlock delete nvidia-open nvidia-driver "
                    "kmod-nvidia-open-dkms")
    assert r.returncode == 0, r.stdout
    r = lab.ansible(HOST, "ansible.builtin.dnf", f"name=nvidia-open-580.95.05-1.el9 state=present {DNF4}")
    assert r.returncode == 0 and "CHANGED" in r.stdout, r.stdout
    assert (evr(lab, "nvidia-open"), evr(lab, "nvidia-driver")) == (new, new)
    assert '"580.95.05"' in smi_driver(lab)
    r = lab.ansible(HOST, "ansible.builtin.dnf", f"name=nvidia-open-580.95.05-1.el9 state=present {DNF4}")
    assert r.returncode == 0 and "CHANGED" not in r.stdout, r.stdout  # idempotent
    switch_stream(lab, "535-open")
    r = lab.ansible(HOST, "ansible.builtin.dnf", "name=nvidia-open-535.183.01-1.el9,nvidia-driver-535.183.01-1.el9,"
                    f"kmod-nvidia-open-dkms-535.183.01-1.el9 state=present allow_downgrade=true {DNF4}")
    assert r.returncode == 0, r.stdout
    assert (evr(lab, "nvidia-open"), evr(lab, "nvidia-driver")) == (old, old)
    r = lab.ansible(HOST, "ansible.builtin.command", "dnf -q versionlock add nvidia-open nvidia-driver "
                    "kmod-nvidia-open-dkms")
    assert r.returncode == 0, r.stdout
    assert "nvidia-open-3:535.183.01-1.el9.*" in lab.ssh(HOST, "dnf -q versionlock list").stdout


def test_dnf_removes_for_real_and_reinstalls(lab: LabHandle) -> None:
    lab.ssh(HOST, "dnf -q versionlock delete nvidia-open nvidia-driver kmod-nvidia-open-dkms")
    try:
        r = lab.ansible(HOST, "ansible.builtin.dnf", "name=nvidia-open,nvidia-driver,kmod-nvidia-open-dkms "
                        f"state=absent {DNF4}")
        assert r.returncode == 0, r.stdout
        assert evr(lab, "nvidia-driver") == "absent"
        assert lab.ssh(HOST, "test -e /usr/bin/nvidia-smi").returncode != 0
    finally:
        r = lab.ansible(HOST, "ansible.builtin.dnf", f"name=nvidia-open-535.183.01-1.el9 state=present {DNF4}")
        lab.ssh(HOST, "dnf -q versionlock add nvidia-open nvidia-driver kmod-nvidia-open-dkms")
    assert r.returncode == 0, r.stdout
    assert evr(lab, "nvidia-driver") == "3:535.183.01-1.el9"



def test_facts_of_the_rpm_host_name_its_source_and_rpm_components(lab: LabHandle) -> None:
    snap = collect_live(lab.inventory, load_inventory(lab.inventory), limit=HOST)
    [facts] = snap.hosts
    assert facts.package_index.manager == "dnf"
    assert facts.package_index.source == "cuda-dnf"
    assert facts.package_index.source_evidence == "installed kmod-nvidia-open-dkms"
    assert facts.driver.package in ("nvidia-driver", "nvidia-open", "kmod-nvidia-open-dkms")
    assert facts.driver.version == "535.183.01"
    # every branch, though the host's enabled stream (535-open) hides the others from plain dnf queries
    assert "3:580.95.05-1.el9" in facts.package_index.available["nvidia-open"]
    assert sorted(facts.held_packages) == ["kmod-nvidia-open-dkms", "nvidia-driver", "nvidia-open"]
    # NVIDIA's RHEL module comes by DKMS (kmod-nvidia-open-dkms); the lab has no dkms program, so no builds are
    # listed, and the module the package put under the running kernel's updates/dkms is read with modinfo
    modules = facts.kernel_modules
    assert modules is not None and modules.packaging == "dkms" and modules.dkms is None
    assert modules.kernels[running_kernel()] == "535.183.01"
    [host] = build_fleet(load_inventory(lab.inventory), snap).fleet.hosts
    assert host.packages.source is PackageSource.CUDA_DNF


def driver_step(lab: LabHandle, build: str, stream: str) -> PlaybookResult:
    """upgrade_host.yml with a dnf driver step's variables, as the planner writes them for this host."""
    return run_playbook("upgrade_host.yml", lab.inventory, limit=HOST, extravars={
        "upgrade_host_component": "driver", "upgrade_host_version": build, "upgrade_host_package": "nvidia-open",
        "upgrade_host_kernel_module": "open", "upgrade_host_reboot": False, "upgrade_host_package_manager": "dnf",
        "upgrade_host_with_packages": "nvidia-driver,kmod-nvidia-open-dkms",
        "upgrade_host_module_stream": f"nvidia-driver:{stream}"})


def module_tasks(result: PlaybookResult) -> list[str]:
    return [t.task for t in result.tasks if t.changed and "module" in t.task]


def test_driver_step_enables_the_planned_stream_resetting_the_old_one(lab: LabHandle) -> None:
    new, old = "3:580.95.05-1.el9", "3:535.183.01-1.el9"
    assert enabled_streams(lab) == ["535-open"]
    up = driver_step(lab, new, "580-open")
    assert up.status == "successful", up.host_messages(HOST)
    assert module_tasks(up) == ["Reset the other stream of the module nvidia-driver",
                                "Enable the module stream nvidia-driver:580-open"], module_tasks(up)
    assert enabled_streams(lab) == ["580-open"]
    assert (evr(lab, "nvidia-open"), evr(lab, "kmod-nvidia-open-dkms")) == (new, new)
    assert "nvidia-open-3:580.95.05-1.el9.*" in lab.ssh(HOST, "dnf -q versionlock list").stdout

    again = driver_step(lab, new, "580-open")  # idempotent: the stream is enabled and the build is in
    assert again.status == "successful", again.host_messages(HOST)
    assert [t.task for t in again.tasks if t.changed] == []
    assert enabled_streams(lab) == ["580-open"] and evr(lab, "nvidia-open") == new

    back = driver_step(lab, old, "535-open")  # the branch goes back: the module is reset to the old stream
    assert back.status == "successful", back.host_messages(HOST)
    assert module_tasks(back) == ["Reset the other stream of the module nvidia-driver",
                                  "Enable the module stream nvidia-driver:535-open"], module_tasks(back)
    assert enabled_streams(lab) == ["535-open"]
    assert (evr(lab, "nvidia-open"), evr(lab, "kmod-nvidia-open-dkms")) == (old, old)
    assert "nvidia-open-3:535.183.01-1.el9.*" in lab.ssh(HOST, "dnf -q versionlock list").stdout
