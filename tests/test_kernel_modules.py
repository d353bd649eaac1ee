"""Kernel coupling parsers and the pre-reboot check's one line (captured output shapes of modinfo and dkms)."""

from __future__ import annotations

from orchestrator.hostside.kernel_modules import (
    boot_kernel_problem,
    module_packaging,
    parse_dkms_status,
    parse_modinfo_version,
)

MODINFO = """filename:       /lib/modules/6.8.0-45-generic/updates/dkms/nvidia.ko.zst
import_ns:      DMA_BUF
alias:          char-major-195-*
version:        580.95.05
supported:      external
license:        Dual MIT/GPL
"""


def test_packaging_is_told_by_the_installed_packages() -> None:
    assert module_packaging({"linux-modules-nvidia-580-server-open-6.8.0-45-generic": "6.8.0-45.45",
                             "nvidia-driver-580-server-open": "580.95.05-0ubuntu0.24.04.1"}) == "precompiled"
    assert module_packaging({"nvidia-dkms-580-open": "580.95.05-0ubuntu1"}) == "dkms"
    assert module_packaging({"kmod-nvidia-open-dkms": "3:580.95.05-1.el9"}) == "dkms"
    assert module_packaging({"nvidia-driver-580": "580.95.05-0ubuntu1"}) is None


def test_modinfo_and_dkms_status_parse() -> None:
    assert parse_modinfo_version(MODINFO) == "580.95.05"
    assert parse_modinfo_version("modinfo: ERROR: Module nvidia not found.\n") is None
    text = ("nvidia/580.95.05, 6.8.0-45-generic, x86_64: installed\n"
            "nvidia, 535.183.01, 5.15.0-91-generic, x86_64: installed (original_module exists)\n"
            "nvidia/580.95.05, 6.8.0-49-generic, x86_64: built\n")
    assert parse_dkms_status(text) == [
        {"module": "nvidia", "version": "580.95.05", "kernel": "6.8.0-45-generic", "state": "installed"},
        {"module": "nvidia", "version": "535.183.01", "kernel": "5.15.0-91-generic", "state": "installed"},
        {"module": "nvidia", "version": "580.95.05", "kernel": "6.8.0-49-generic", "state": "built"},
    ]


def test_boot_kernel_check_names_host_kernel_and_what_is_missing() -> None:
    assert boot_kernel_problem("n1", "6.8.0-45-generic", "580.95.05", "580.95.05", [], "dkms") is None
    dkms = parse_dkms_status("nvidia/580.95.05, 6.8.0-49-generic, x86_64: installed\n")
    assert boot_kernel_problem("n1", "6.8.0-49-generic", "580.95.05", None, dkms, "dkms") is None
    line = boot_kernel_problem("n1", "6.8.0-51-generic", "580.95.05", None, dkms, "dkms")
    assert line == ("n1: kernel 6.8.0-51-generic (booted next) has no nvidia module, not driver 580.95.05: "
                    "DKMS has not built nvidia/580.95.05 for 6.8.0-51-generic (kernel headers missing?)")
    line = boot_kernel_problem("n1", "6.8.0-51-generic", "580.95.05", "535.183.01", [], "precompiled")
    assert line is not None and "nvidia module 535.183.01" in line and "linux-modules-nvidia" in line
    assert "\n" not in line
