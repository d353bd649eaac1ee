"""The grammars of every value that reaches a playbook or a scheduler: checked, never trusted.

Package builds, package names, node names and the plan's playbook variables come from hosts and input files.
Each is checked against its grammar before it is planned and again when a plan is loaded, so that no
``{{ }}``, ``$( )``, ``;``, hostlist brackets or commas can reach Ansible or Slurm; the Ansible adapter also
passes every string as unsafe text, so Ansible never templates it.
"""

from __future__ import annotations

import re

# dpkg: [epoch:]upstream[-revision], upstream starting with a digit; RPM's [epoch:]version-release fits too.
BUILD = re.compile(r"^(?:\d{1,9}:)?[0-9][A-Za-z0-9.+~^_-]{0,127}$")
# Debian (lower case) and RPM (mixed case, underscores) package names.
PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
# ``uname -r``: 6.8.0-90-generic, 5.14.0-570.el9.x86_64
KERNEL_RELEASE = re.compile(r"^[0-9][A-Za-z0-9._+~-]{0,127}$")
UPSTREAM = re.compile(r"^[0-9]+(?:\.[0-9]+){0,3}$")
# A Slurm node name: one node, no hostlist ranges (``gpu[1-6]``), no lists (``a,b``), no spaces.
SLURM_NODE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})$")
# A Kubernetes node name: an RFC 1123 subdomain (lower case), at most 253 characters.
K8S_NODE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$")
VAR_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
# Free text the program itself writes into variables (drain reasons): printable, no template or shell syntax.
TEXT = re.compile(r"^[A-Za-z0-9 .:_+/@-]{0,200}$")
FLAVOR = frozenset({"open", "proprietary", "auto"})

# Playbook variables of a plan step and the grammar each value must follow.
_VAR_GRAMMAR: dict[str, re.Pattern[str] | frozenset[str]] = {
    "upgrade_host_component": re.compile(r"^[a-z_]{1,32}$"),
    "upgrade_host_version": BUILD,
    "upgrade_host_package": PACKAGE,
    "upgrade_host_kernel_module": FLAVOR,
    "upgrade_host_cudnn_cuda_major": re.compile(r"^[0-9]{1,3}$"),
    # the package source's extra packages for the driver step (kernel module, branch pinning, dnf stream)
    "upgrade_host_module_package": PACKAGE,
    "upgrade_host_module_version": BUILD,
    "upgrade_host_pinning_package": PACKAGE,
    "upgrade_host_pinning_version": BUILD,
    "upgrade_host_module_stream": re.compile(r"^nvidia-driver:[0-9]{3}-(?:open|dkms)$"),
    "upgrade_driver_fabric_manager_version": BUILD,
    "upgrade_host_package_manager": frozenset({"apt", "dnf"}),
    # dnf: the packages moved and locked with the driver, comma-separated (no spaces, at most 16)
    "upgrade_host_with_packages": re.compile(rf"^{PACKAGE.pattern[1:-1]}(?:,{PACKAGE.pattern[1:-1]}){{0,15}}$"),
    "drain_reason": TEXT,
    "gate_expect_driver": re.compile(r"^(?:[0-9]+(?:\.[0-9]+){0,3})?$"),
    "reboot_expect_driver": UPSTREAM,
    "reboot_expect_flavor": FLAVOR,
    # the kernel step: the release booted next (``uname -r``), the packages removed on a way back
    "upgrade_host_kernel_release": KERNEL_RELEASE,
    "reboot_expect_kernel": KERNEL_RELEASE,
    "upgrade_host_kernel_remove": re.compile(rf"^{PACKAGE.pattern[1:-1]}(?:,{PACKAGE.pattern[1:-1]}){{0,15}}$"),
}
_NUMERIC_VARS = frozenset({"drain_timeout_s", "gate_level"})
_BOOL_VARS = frozenset({"upgrade_host_reboot", "upgrade_fabric_manager_start", "upgrade_package_hold", "gate_fail",
                        "gate_nccl"})


def is_build(text: str) -> bool:
    return bool(BUILD.match(text))


def check_node_name(name: str, scheduler: str) -> str | None:
    """Why ``name`` is not a single node of ``scheduler``; None when it is."""
    if scheduler == "slurm" and not SLURM_NODE.match(name):
        return (f"{name!r} is not one Slurm node name (letters, digits, '.', '_', '-'; no hostlist "
                "brackets, commas or spaces)")
    if scheduler == "kubernetes" and not K8S_NODE.match(name):
        return f"{name!r} is not a Kubernetes node name (lower-case RFC 1123 subdomain)"
    return None


# A workload gate's argv items and image: no control characters, nothing Jinja or a shell would read.
WORKLOAD_ARG = re.compile(r"^[^\x00-\x1f\x7f{}$`]{1,400}$")
IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_WORKLOAD_KEYS = frozenset({"command", "image", "runtime", "timeout_s", "expect_rc"})


def _check_workload(value: object) -> str | None:
    """``gate_workload``: the pool's workload gate as the plan carries it (see ``policy.WorkloadGate``)."""
    if not isinstance(value, dict) or not set(value) <= _WORKLOAD_KEYS:
        return f"gate_workload must be a mapping of {', '.join(sorted(_WORKLOAD_KEYS))}, got {value!r}"
    command = value.get("command", [])
    if not isinstance(command, list | tuple) or len(command) > 64 or not all(
            isinstance(a, str) and WORKLOAD_ARG.match(a) for a in command):
        return f"gate_workload command {command!r} does not follow its grammar"
    image = value.get("image")
    if image is not None and not (isinstance(image, str) and IMAGE.match(image)):
        return f"gate_workload image {image!r} does not follow its grammar"
    if not command and image is None:
        return "gate_workload needs a command or an image"
    if value.get("runtime", "docker") not in ("docker", "podman"):
        return f"gate_workload runtime {value.get('runtime')!r} is not docker or podman"
    for key, top in (("timeout_s", 86400), ("expect_rc", 255)):
        number = value.get(key, 0)
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= top:
            return f"gate_workload {key} must be a whole number from 0 to {top}, got {number!r}"
    return None


def check_var(key: str, value: object) -> str | None:
    """Why a plan step's variable is not acceptable; None when it is."""
    if not VAR_NAME.match(key):
        return f"variable name {key!r} is not allowed"
    if key == "gate_workload":
        return _check_workload(value)
    if key in _NUMERIC_VARS:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**7
        return None if ok else f"{key} must be a whole number, got {value!r}"
    if key in _BOOL_VARS:
        return None if isinstance(value, bool) else f"{key} must be true or false, got {value!r}"
    grammar = _VAR_GRAMMAR.get(key)
    if grammar is None:
        return f"unknown playbook variable {key!r}"
    if not isinstance(value, str):
        return f"{key} must be text, got {value!r}"
    ok = value in grammar if isinstance(grammar, frozenset) else bool(grammar.match(value))
    return None if ok else f"{key} {value!r} does not follow its grammar"
