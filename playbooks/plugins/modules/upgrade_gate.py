#!/usr/bin/python
"""Ansible module: run the gate probes on a GPU host and return one structured result (``gate``)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_gate
short_description: Check a GPU host after a change - versions, dcgmi diag, nvidia-smi health, bandwidth figure
description:
  - Versions as planned - nvidia-smi's driver on every GPU, dpkg versions (and holds) of the listed packages.
  - C(dcgmi diag -r LEVEL -j) parsed into tests, failures and per-GPU PCIe bandwidth.
  - nvidia-smi health fields (ECC errors, retired pages, remapped rows, clock event reasons, temperature) from
    C(--query-gpu) CSV and C(-q -d PERFORMANCE,CLOCK,ECC,PAGE_RETIREMENT,ROW_REMAPPER).
  - Never fails because of what it finds; C(gate.passed) and C(gate.problems) say what is wrong.
    Baselines and straggler checks live on the controller (orchestrator.run.stragglers).
options:
  expect_driver: {description: Driver version every GPU must report ("" skips the check)., type: str, default: ""}
  expect_packages: {description: "Package name -> exact version.", type: dict, default: {}}
  expect_held: {description: The expected packages must also be held., type: bool, default: true}
  diag_level: {description: dcgmi diag level (0 skips it)., type: int, default: 1}
  health: {description: Read the nvidia-smi health fields., type: bool, default: true}
  max_temperature_c: {description: Hotter GPUs fail the gate., type: float, default: 85}
  bad_clock_event_reasons: {description: Clock event reasons that fail the gate., type: list, elements: str, default: []}
  command_timeout: {description: Seconds each probe may take., type: int, default: 1800}
"""

RETURN = r"""
gate:
  description: passed, problems, versions, diag, health (one entry per GPU), figures (pcie_h2d_gbps).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpu_fleet.upgrade.plugins.module_utils.upgrade_gate_parsers import (
    BAD_CLOCK_EVENT_REASONS,
    diag_problems,
    gpu_health_problems,
    health_from_query,
    health_from_query_text,
    min_bandwidth,
    parse_dcgmi_diag_json,
    parse_query_csv,
    parse_smi_query_text,
)

QUERY = ("index,pci.bus_id,temperature.gpu,ecc.mode.current,ecc.errors.uncorrected.volatile.total,"
         "retired_pages.pending,clocks_throttle_reasons.active,clocks.sm,clocks.max.sm")
HEALTH_SECTIONS = "PERFORMANCE,CLOCK,ECC,PAGE_RETIREMENT,ROW_REMAPPER"


def main():
    module = AnsibleModule(argument_spec={
        "expect_driver": {"type": "str", "default": ""},
        "expect_packages": {"type": "dict", "default": {}},
        "expect_held": {"type": "bool", "default": True},
        "diag_level": {"type": "int", "default": 1},
        "health": {"type": "bool", "default": True},
        "max_temperature_c": {"type": "float", "default": 85.0},
        "bad_clock_event_reasons": {"type": "list", "elements": "str", "default": []},
        "command_timeout": {"type": "int", "default": 1800},
    }, supports_check_mode=True)
    p = module.params
    timeout_bin = module.get_bin_path("timeout")

    def run(*cmd):
        path = module.get_bin_path(cmd[0])
        if not path:
            return 127, "", "%s: command not found" % cmd[0]
        prefix = [timeout_bin, str(p["command_timeout"])] if timeout_bin else []
        return module.run_command(prefix + [path] + list(cmd[1:]), check_rc=False, environ_update={"LC_ALL": "C"})

    problems = []
    gate = {"passed": False, "problems": problems, "versions": None, "diag": None, "health": [], "figures": {}}

    # Versions as planned.
    versions = {"driver_expected": p["expect_driver"] or None, "driver_found": [], "packages_expected":
                p["expect_packages"], "packages_found": {}, "held": {}, "passed": True}
    rc, out, err = run("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader")
    if rc == 0:
        versions["driver_found"] = sorted(set(line.strip() for line in out.splitlines() if line.strip()))
    elif p["expect_driver"] or p["health"]:
        problems.append("nvidia-smi failed (rc %s): %s" % (rc, (out.strip() or err.strip()).splitlines()[0:1]))
    if p["expect_driver"] and versions["driver_found"] != [p["expect_driver"]]:
        problems.append("driver: planned %s, nvidia-smi reports %s" % (
            p["expect_driver"], ", ".join(versions["driver_found"]) or "nothing"))
    if p["expect_packages"]:
        names = sorted(p["expect_packages"])
        rc, out, _err = run("dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n", *names)
        found = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2].endswith(" installed"):
                found[parts[0]] = parts[1]
                versions["held"][parts[0]] = parts[2].startswith("hold ")
        for name in names:
            want = str(p["expect_packages"][name])
            versions["packages_found"][name] = found.get(name)
            if found.get(name) != want:
                problems.append("%s: planned %s, installed %s" % (name, want, found.get(name) or "nothing"))
            elif p["expect_held"] and not versions["held"].get(name):
                problems.append("%s: %s installed but not held" % (name, want))
    versions["passed"] = not problems
    gate["versions"] = versions

    # nvidia-smi health fields.
    if p["health"] and rc_ok(run):
        rc, out, _err = run("nvidia-smi", "--query-gpu=" + QUERY, "--format=csv")
        rows = [health_from_query(r) for r in parse_query_csv(out)] if rc == 0 else []
        rc2, text, _err = run("nvidia-smi", "-q", "-d", HEALTH_SECTIONS)
        detailed = {}
        if rc2 == 0:
            for g in parse_smi_query_text(text)["gpus"]:
                h = health_from_query_text(g)
                detailed[str(h["bus_id"]).upper()] = h
        merged = []
        for row in rows:
            extra = detailed.get(str(row.get("bus_id")).upper(), {})
            both = dict(row)
            for key, value in extra.items():
                if value is not None and (key not in ("temperature_c", "sm_clock_mhz") or both.get(key) is None):
                    both[key] = value
            merged.append(both)
        if not rows:
            merged = list(detailed.values())
        bad = p["bad_clock_event_reasons"] or list(BAD_CLOCK_EVENT_REASONS)
        for h in merged:
            problems.extend(gpu_health_problems(h, p["max_temperature_c"], bad))
        gate["health"] = merged

    # dcgmi diag.
    if p["diag_level"] > 0:
        rc, out, err = run("dcgmi", "diag", "-r", str(p["diag_level"]), "-j")
        diag = parse_dcgmi_diag_json(out if out.strip() else err)
        diag["level"] = p["diag_level"]
        diag["rc"] = rc
        problems.extend(diag_problems(diag))
        figure = min_bandwidth(diag)
        if figure is not None:
            gate["figures"]["pcie_h2d_gbps"] = figure
        gate["diag"] = diag

    gate["passed"] = not problems
    module.exit_json(changed=False, gate=gate)


def rc_ok(run):
    """Health fields need a working nvidia-smi; its failure is already a version problem."""
    rc, _out, _err = run("nvidia-smi", "-L")
    return rc == 0


if __name__ == "__main__":
    main()
