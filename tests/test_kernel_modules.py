"""Kernel coupling parsers and the pre-reboot check's one line (captured output shapes of modinfo and dkms)."""

from __future__ import annotations

import lzma
import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.hostside.kernel_modules import (
    boot_kernel_problem,
    check_boot_kernel,
    module_packaging,
    module_version,
    next_boot_kernel,
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


def _runner(answers: dict[str, tuple[int, str, str]]) -> Callable[[list[str]], tuple[int, str, str]]:
    """Programs answer by name as on a host; a program not listed is not installed (127)."""
    def run(argv: list[str]) -> tuple[int, str, str]:
        return answers.get(argv[0], (127, "", f"{argv[0]}: not found"))
    return run


def test_next_boot_kernel_grubby_then_newest_image_then_running(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    for name in ("vmlinuz-6.8.0-45-generic", "vmlinuz-6.8.0-101-generic", "vmlinuz-0-rescue-abc", "config-9.9"):
        (boot / name).write_text("")
    grubby = _runner({"grubby": (0, "/boot/vmlinuz-5.14.0-427.el9.x86_64\n", "")})
    assert next_boot_kernel(grubby, str(boot)) == ("5.14.0-427.el9.x86_64", "grubby --default-kernel")
    kernel, how = next_boot_kernel(_runner({}), str(boot))
    assert kernel == "6.8.0-101-generic" and "newest" in how  # natural order: 101 after 45, rescue left out
    assert next_boot_kernel(_runner({}), str(tmp_path / "none"))[0] == os.uname().release


def test_module_version_from_modinfo_else_the_file_under_the_kernels_folder(tmp_path: Path) -> None:
    assert module_version(_runner({"modinfo": (0, "580.95.05\n", "")}), "6.8.0-45-generic") == "580.95.05"
    folder = tmp_path / "6.8.0-45-generic" / "updates" / "dkms"
    folder.mkdir(parents=True)
    # no modules.dep entry and no kmod: the module's own .modinfo section is read (plain and xz)
    (folder / "nvidia.ko").write_bytes(b"\x7fELF...\x00srcversion=ABC\x00version=570.172.08\x00license=NVIDIA\x00")
    assert module_version(_runner({}), "6.8.0-45-generic", str(tmp_path)) == "570.172.08"
    (folder / "nvidia.ko").unlink()
    (folder / "nvidia.ko.xz").write_bytes(lzma.compress(b"\x00version=580.95.05\x00"))
    assert module_version(_runner({}), "6.8.0-45-generic", str(tmp_path)) == "580.95.05"
    assert module_version(_runner({}), "6.9.0-1-generic", str(tmp_path)) is None


def test_check_boot_kernel_names_the_missing_module_and_passes_a_built_one(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "vmlinuz-6.8.0-101-generic").write_text("")
    answers = {"dpkg-query": (0, "ii  nvidia-dkms-580-open\nii  linux-image-6.8.0-101-generic\n", ""),
               "dkms": (0, "nvidia/580.95.05, 6.8.0-45-generic, x86_64: installed\n", "")}
    found = check_boot_kernel("gpu-07", "580.95.05", _runner(answers), str(boot), str(tmp_path / "modules"))
    assert found["kernel"] == "6.8.0-101-generic" and found["packaging"] == "dkms"
    assert found["problem"] == ("gpu-07: kernel 6.8.0-101-generic (booted next) has no nvidia module, not driver "
                                "580.95.05: DKMS has not built nvidia/580.95.05 for 6.8.0-101-generic (kernel "
                                "headers missing?)")
    built = _runner({**answers, "modinfo": (0, "580.95.05\n", "")})
    assert check_boot_kernel("gpu-07", "580.95.05", built, str(boot), str(tmp_path / "modules"))["problem"] is None
