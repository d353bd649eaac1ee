"""The gates one host runs after a change, by level; the same code for ``upgrade gate --local`` and the gate role.

Standard library only, Python 3.8 syntax: shipped to hosts as Ansible module_utils. IO goes through the ``run``
callable (argv list, timeout -> rc, stdout, stderr), so tests feed captured output.

Level 1: the CUDA probe without NCCL (driver, runtime, cuDNN), nvidia-smi health, versions, Xid in the kernel
log. Level 2 adds the NCCL all-reduce and ``dcgmi diag -r 1`` where DCGM is installed; level 3 runs
``dcgmi diag -r 2`` instead. The pool's workload gate, when it has one, runs at every level.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

try:  # in the project
    from orchestrator.hostside import cuda_probe, gate_parsers
except ImportError:  # shipped as module_utils of the gpu_fleet.upgrade collection (links to these files)
    from ansible_collections.gpu_fleet.upgrade.plugins.module_utils import (  # type: ignore[import-not-found,no-redef]
        upgrade_cuda_probe as cuda_probe,
    )
    from ansible_collections.gpu_fleet.upgrade.plugins.module_utils import (  # type: ignore[no-redef]
        upgrade_gate_parsers as gate_parsers,
    )

Runner = Callable[[List[str], float], Tuple[int, str, str]]

QUERY = ("index,pci.bus_id,name,driver_version,temperature.gpu,ecc.mode.current,"
         "ecc.errors.uncorrected.volatile.total,retired_pages.pending,clocks_throttle_reasons.active,clocks.sm,"
         "clocks.max.sm")


def run_command(argv: List[str], timeout: float) -> Tuple[int, str, str]:
    """Run ``argv`` (never through a shell) with a timeout; 127 when missing, 124 when it ran too long."""
    if not shutil.which(argv[0]):
        return 127, "", "%s: command not found" % argv[0]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, LC_ALL="C"), errors="replace")
    except subprocess.TimeoutExpired:
        return 124, "", "%s did not finish within %g s" % (argv[0], timeout)
    return p.returncode, p.stdout, p.stderr


HEALTH_SECTIONS = "PERFORMANCE,CLOCK,ECC,PAGE_RETIREMENT,ROW_REMAPPER"


def health_check(run: Runner, timeout: float, max_temperature_c: float = 85.0,
                 bad_reasons: Optional[List[str]] = None) -> Dict[str, Any]:
    """nvidia-smi's health fields per GPU (query CSV, completed by ``-q -d``) and what is wrong with them."""
    rc, out, err = run(["nvidia-smi", "--query-gpu=" + QUERY, "--format=csv"], timeout)
    if rc != 0:
        first = (err or out).strip().splitlines()
        return {"gpus": [], "drivers": [], "problems": ["nvidia-smi: %s" % (first[0] if first else "exit %d" % rc)]}
    rows = gate_parsers.parse_query_csv(out)
    gpus = [gate_parsers.health_from_query(r) for r in rows]
    rc, text, _err = run(["nvidia-smi", "-q", "-d", HEALTH_SECTIONS], timeout)
    if rc == 0:  # retired pages, remapped rows, aggregate ECC: only the text report has them
        detailed = {}
        for g in gate_parsers.parse_smi_query_text(text)["gpus"]:
            h = gate_parsers.health_from_query_text(g)
            detailed[str(h["bus_id"]).upper()] = h
        for gpu in gpus:
            for key, value in detailed.get(str(gpu.get("bus_id")).upper(), {}).items():
                if value is not None and (key not in ("temperature_c", "sm_clock_mhz") or gpu.get(key) is None):
                    gpu[key] = value
    problems: List[str] = []
    for g in gpus:
        problems += gate_parsers.gpu_health_problems(g, max_temperature_c,
                                                     bad_reasons or gate_parsers.BAD_CLOCK_EVENT_REASONS)
    drivers = sorted({str(r.get("driver_version")) for r in rows if r.get("driver_version")})
    return {"gpus": gpus, "drivers": drivers, "names": [r.get("name") for r in rows], "problems": problems}


def packages_check(run: Runner, timeout: float, expected: Dict[str, str], held: bool) -> Dict[str, Any]:
    """dpkg's (or rpm's) installed version of each planned package, and whether apt holds it."""
    names = sorted(expected)
    found: Dict[str, Optional[str]] = {n: None for n in names}
    holds: Dict[str, bool] = {}
    problems: List[str] = []
    if not names:
        return {"found": found, "held": holds, "problems": problems}
    rc, out, _err = run(["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n", *names], timeout)
    if rc == 127:  # RPM hosts: no holds to read (dnf versionlock is a plugin)
        fmt = "%{NAME}\\t%{VERSION}-%{RELEASE}\\tinstall ok installed\\n"
        rc, out, _err = run(["rpm", "-q", "--qf", fmt, *names], timeout)
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].endswith(" installed") and parts[0] in found:
            found[parts[0]] = parts[1]
            holds[parts[0]] = parts[2].startswith("hold ")
    for name in names:
        want = str(expected[name])
        if found[name] != want:
            problems.append("%s: planned %s, installed %s" % (name, want, found[name] or "nothing"))
        elif held and not holds.get(name):
            problems.append("%s: %s installed but not held" % (name, want))
    return {"found": found, "held": holds, "problems": problems}


def xid_check(run: Runner, timeout: float, since: Optional[float]) -> Dict[str, Any]:
    """``NVRM: Xid`` lines of the kernel log since ``since`` (epoch seconds; None: since boot)."""
    argv = ["journalctl", "-k", "-q", "--no-pager", "-o", "short-iso"]
    if since is not None:
        argv += ["--since", "@%d" % int(since)]
    rc, out, err = run(argv, timeout)
    source = "journalctl"
    if rc != 0:  # no journal (containers, minimal hosts): the kernel ring buffer, which holds this boot only
        rc, out, err = run(["dmesg"], timeout)
        source = "dmesg"
    if rc != 0:
        return {"source": None, "events": [], "codes": [], "problems": [],
                "error": "kernel log unreadable: %s" % ((err or out).strip().splitlines() or ["exit %d" % rc])[0]}
    events = gate_parsers.parse_xid(out)
    return {"source": source, "events": events, "codes": sorted({e["code"] for e in events}),
            "problems": gate_parsers.xid_problems(events)}


def diag_check(run: Runner, level: int, timeout: float) -> Optional[Dict[str, Any]]:
    """``dcgmi diag -r LEVEL -j`` parsed, or None where DCGM is not installed (then it is no gate)."""
    rc, out, err = run(["dcgmi", "diag", "-r", str(level), "-j"], timeout)
    if rc == 127:
        return None
    diag = gate_parsers.parse_dcgmi_diag_json(out if out.strip() else err)
    diag["level"], diag["rc"] = level, rc
    return diag


def workload_argv(workload: Dict[str, Any]) -> List[str]:
    """The argv of a pool's workload gate: its command, or its image through the host's container runtime."""
    command = [str(x) for x in workload.get("command") or []]
    image = workload.get("image")
    if not image:
        return command
    runtime = str(workload.get("runtime") or "docker")
    gpus = ["--device", "nvidia.com/gpu=all"] if runtime == "podman" else ["--gpus", "all"]
    return [runtime, "run", "--rm", *gpus, str(image), *command]


def workload_check(run: Runner, workload: Dict[str, Any]) -> Dict[str, Any]:
    """Run the workload with its timeout; it passes with its expected exit status. Its time is a figure."""
    argv = workload_argv(workload)
    timeout = float(workload.get("timeout_s") or 600)
    expect = int(workload.get("expect_rc") or 0)
    t0 = time.monotonic()
    rc, out, err = run(argv, timeout)
    seconds = round(time.monotonic() - t0, 3)
    result = {"argv": argv, "rc": rc, "expect_rc": expect, "seconds": seconds, "ok": rc == expect,
              "output_tail": (out + err)[-2000:]}
    if rc != expect:
        tail = (err or out).strip().splitlines()
        why = "timed out after %g s" % timeout if rc == 124 else "exit %d, expected %d" % (rc, expect)
        result["error"] = "workload %s: %s%s" % (argv[0] if argv else "?", why, (": " + tail[-1]) if tail else "")
    return result


def run_gate(level: int = 1, *, expect_driver: Optional[str] = None,
             expect_packages: Optional[Dict[str, str]] = None, expect_held: bool = True,
             cuda_version: Optional[str] = None,
             need_cudnn: bool = False, since: Optional[float] = None, workload: Optional[Dict[str, Any]] = None,
             timeout: float = 120.0, diag_timeout: float = 1800.0, max_temperature_c: float = 85.0,
             extra_dirs: Optional[List[str]] = None, run: Runner = run_command,
             probe: Optional[Callable[..., Dict[str, Any]]] = None, diag_level: Optional[int] = None,
             nccl: Optional[bool] = None, bad_clock_event_reasons: Optional[List[str]] = None) -> Dict[str, Any]:
    """Every gate of ``level`` on this machine: one dict with passed, problems, each check's result and figures.

    ``diag_level`` (the ``dcgmi diag -r`` level, 0: none) and ``nccl`` override what ``level`` implies: the gate
    role passes the plan's DCGM level as it is.
    """
    if diag_level is None:
        diag_level = 0 if level < 2 else 1 if level == 2 else 2
    if nccl is None:
        nccl = level >= 2
    t0 = time.monotonic()
    problems: List[str] = []
    probe_fn = probe or cuda_probe.run_probe
    result: Dict[str, Any] = {"level": level}
    result["probe"] = probe_fn(cuda_version=cuda_version, nccl=nccl, timeout=timeout, extra_dirs=extra_dirs)
    problems += cuda_probe.probe_problems(result["probe"], need_cudnn=need_cudnn)
    health = health_check(run, timeout, max_temperature_c, bad_clock_event_reasons)
    result["health"] = health["gpus"]
    problems += health["problems"]
    versions = {"driver_expected": expect_driver, "driver_found": health["drivers"], "passed": True}
    if expect_driver and health["drivers"] != [expect_driver]:
        versions["passed"] = False
        problems.append("driver: planned %s, nvidia-smi reports %s" % (expect_driver,
                                                                        ", ".join(health["drivers"]) or "nothing"))
    packages = packages_check(run, timeout, expect_packages or {}, expect_held)
    versions.update({"packages_expected": dict(expect_packages or {}), "packages_found": packages["found"],
                     "held": packages["held"]})
    if packages["problems"]:
        versions["passed"] = False
        problems += packages["problems"]
    result["versions"] = versions
    xid = xid_check(run, timeout, since)
    result["xid"] = xid
    problems += xid["problems"]
    result["diag"] = diag_check(run, diag_level, diag_timeout) if diag_level > 0 else None
    if result["diag"] is not None:
        problems += gate_parsers.diag_problems(result["diag"])
    result["workload"] = workload_check(run, workload) if workload else None
    if result["workload"] is not None and not result["workload"]["ok"]:
        problems.append(result["workload"]["error"])
    figures = cuda_probe.probe_figures(result["probe"])
    if result["workload"] is not None and result["workload"]["ok"]:
        figures["workload_s"] = result["workload"]["seconds"]
    if result["diag"] is not None:
        h2d = gate_parsers.min_bandwidth(result["diag"])
        if h2d is not None:
            figures["pcie_h2d_gbps"] = h2d  # the name the straggler rules and baselines use
    result["figures"] = figures
    result["problems"] = problems
    result["passed"] = not problems
    result["seconds"] = round(time.monotonic() - t0, 3)
    return result
