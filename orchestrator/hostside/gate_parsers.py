"""Pure parsers for gate probes: ``dcgmi diag`` (text and ``-j``), nvidia-smi health text and query CSV.

Shipped to hosts as Ansible module_utils by the collection (``plugins/module_utils/upgrade_gate_parsers.py``,
a symlink), so: standard library only, Python 3.8 syntax (annotations stay strings; no ``removeprefix``, no
``dict | dict``). Every parser takes the text a real tool printed and returns plain dicts; none raises on odd
input, they return what they found.
"""

from __future__ import annotations

import json
import re
from typing import Any

# NVML clock event reasons (nvmlClocksEventReason*; formerly "throttle reasons"), as nvidia-smi prints the
# bitmask in ``clocks_event_reasons.active`` and the labels in ``-q -d PERFORMANCE``.
CLOCK_EVENT_REASONS = (
    (0x1, "gpu_idle", "Idle"),
    (0x2, "applications_clocks_setting", "Applications Clocks Setting"),
    (0x4, "sw_power_cap", "SW Power Cap"),
    (0x8, "hw_slowdown", "HW Slowdown"),
    (0x10, "sync_boost", "Sync Boost"),
    (0x20, "sw_thermal_slowdown", "SW Thermal Slowdown"),
    (0x40, "hw_thermal_slowdown", "HW Thermal Slowdown"),
    (0x80, "hw_power_brake_slowdown", "HW Power Brake Slowdown"),
    (0x100, "display_clock_setting", "Display Clock Setting"),
)
# Reasons that mean the GPU is being slowed by a fault (heat, power delivery), not by policy or idleness.
BAD_CLOCK_EVENT_REASONS = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")

_LABEL_TO_REASON = {label: name for _bit, name, label in CLOCK_EVENT_REASONS}
_NA = ("N/A", "[N/A]", "Not Found", "Not Supported", "[Not Supported]", "")


def _number(value: Any) -> float | None:
    """The leading number of a value like ``"345 MHz"``, ``"136.41 W"`` or ``"0"``; None for N/A."""
    if value is None:
        return None
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(value))
    return float(m.group(1)) if m else None


def _int(value: Any) -> int | None:
    n = _number(value)
    return None if n is None else int(n)


def decode_clock_event_reasons(mask: str | int) -> list[str]:
    """Names of the active reasons in a bitmask such as ``0x0000000000000008`` -> ``["hw_slowdown"]``."""
    try:
        value = mask if isinstance(mask, int) else int(str(mask).strip(), 16)
    except ValueError:
        return []
    return [name for bit, name, _label in CLOCK_EVENT_REASONS if value & bit]


# ---------------------------------------------------------------- nvidia-smi --query-gpu CSV

def parse_query_csv(text: str) -> list[dict[str, str | None]]:
    """Rows of ``nvidia-smi --query-gpu=... --format=csv``: keys without units, values without units, N/A -> None.

    The old field name ``clocks_throttle_reasons.active`` is answered by new drivers with the header
    ``clocks_event_reasons.active``; both become ``clocks_event_reasons.active``.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in lines[0].split(",")]
    header = ["clocks_event_reasons.active" if h == "clocks_throttle_reasons.active" else h for h in header]
    rows = []
    for line in lines[1:]:
        values = [v.strip() for v in line.split(",")]
        if len(values) != len(header):
            continue
        row: dict[str, str | None] = {}
        for i, key in enumerate(header):
            value = re.sub(r" (MiB|W|MHz|%|C)$", "", values[i])
            row[key] = None if value in _NA else value
        rows.append(row)
    return rows


def health_from_query(row: dict[str, str | None]) -> dict[str, Any]:
    """One GPU's health fields from a query-gpu row, in the shape :func:`gpu_health_problems` reads."""
    reasons = row.get("clocks_event_reasons.active")
    return {
        "index": _int(row.get("index")),
        "bus_id": row.get("pci.bus_id"),
        "temperature_c": _number(row.get("temperature.gpu")),
        "ecc_mode": row.get("ecc.mode.current"),
        "ecc_volatile_uncorrectable": _int(row.get("ecc.errors.uncorrected.volatile.total")),
        "retired_pages_pending": row.get("retired_pages.pending"),
        "clock_event_reasons": decode_clock_event_reasons(reasons) if reasons else [],
        "sm_clock_mhz": _number(row.get("clocks.current.sm") or row.get("clocks.sm")),
        "max_sm_clock_mhz": _number(row.get("clocks.max.sm")),
    }


# ---------------------------------------------------------------- nvidia-smi -q (-d ...) text

def _tree(lines: list[str]) -> dict[str, Any]:
    """Nested dict of an indented ``Key : value`` block; a key without a value opens a section."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        key = key.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if sep and value.strip():
            parent[key] = value.strip()
        else:
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
    return root


def parse_smi_query_text(text: str) -> dict[str, Any]:
    """``nvidia-smi -q [-d ...]``: header fields and one nested dict per GPU, keyed by its bus id."""
    header: dict[str, str] = {}
    gpus: list[dict[str, Any]] = []
    current: list[str] | None = None
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = re.match(r"^GPU ([0-9A-Fa-f]{8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$", line)
        if m:
            current = []
            blocks.append((m.group(1), current))
        elif current is not None:
            current.append(line)
        elif ":" in line and not line.startswith("="):
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    for bus, lines in blocks:
        tree = _tree(lines)
        tree["bus_id"] = bus
        gpus.append(tree)
    return {"driver_version": header.get("Driver Version"), "cuda_version": header.get("CUDA Version"),
            "gpus": gpus}


# Drivers before R450 (Kepler to Volta era) print ECC counters per kind of bit error, one sub-section each:
# "Volatile / Single Bit / Device Memory, Register File, ..., Total" and "Double Bit" alike (nvidia-smi(1), "ECC
# Errors"). Single-bit errors are the corrected ones, double-bit the uncorrectable ones.
_OLD_ECC = {"Correctable": "Single Bit", "Uncorrectable": "Double Bit"}


def _sum(section: Any, keys: tuple[str, ...]) -> int | None:
    """Sum of the counters whose names contain one of ``keys`` (None when the section reports none)."""
    if not isinstance(section, dict):
        return None
    old = [section.get(_OLD_ECC[k]) for k in keys if k in _OLD_ECC]
    if any(isinstance(o, dict) for o in old):
        totals = []
        for o in old:
            if isinstance(o, dict):
                total = _int(o.get("Total"))
                if total is None:  # no Total row: the sum of the parts
                    parts = [_int(v) for v in o.values() if not isinstance(v, dict)]
                    total = sum(n for n in parts if n is not None) if any(n is not None for n in parts) else None
                if total is not None:
                    totals.append(total)
        return sum(totals) if totals else None
    found = [_int(v) for k, v in section.items() if not isinstance(v, dict) and any(x in k for x in keys)]
    numbers = [n for n in found if n is not None]
    return sum(numbers) if numbers else None


def health_from_query_text(gpu: dict[str, Any]) -> dict[str, Any]:
    """One GPU's health fields from a ``-q -d PERFORMANCE,CLOCK,ECC,PAGE_RETIREMENT,ROW_REMAPPER`` block."""
    reasons_section = gpu.get("Clocks Event Reasons") or gpu.get("Clocks Throttle Reasons") or {}
    active: list[str] = []

    def walk(section: dict[str, Any]) -> None:
        for label, value in section.items():
            if isinstance(value, dict):
                walk(value)
            elif value == "Active" and label in _LABEL_TO_REASON:
                active.append(_LABEL_TO_REASON[label])

    if isinstance(reasons_section, dict):
        walk(reasons_section)
    ecc = gpu.get("ECC Errors") or {}
    volatile = ecc.get("Volatile") if isinstance(ecc, dict) else None
    aggregate = ecc.get("Aggregate") if isinstance(ecc, dict) else None
    retired = gpu.get("Retired Pages") or {}
    remapped = gpu.get("Remapped Rows") or {}
    clocks = gpu.get("Clocks") or {}
    max_clocks = gpu.get("Max Clocks") or {}
    temp = gpu.get("Temperature") or {}
    ecc_mode = gpu.get("ECC Mode") or {}
    return {
        "bus_id": gpu.get("bus_id"),
        "performance_state": gpu.get("Performance State"),
        "clock_event_reasons": sorted(set(active), key=[n for _b, n, _l in CLOCK_EVENT_REASONS].index),
        "ecc_mode": ecc_mode.get("Current") if isinstance(ecc_mode, dict) else None,
        "ecc_volatile_correctable": _sum(volatile, ("Correctable",)),
        "ecc_volatile_uncorrectable": _sum(volatile, ("Uncorrectable",)),
        "ecc_aggregate_uncorrectable": _sum(aggregate, ("Uncorrectable",)),
        "retired_pages_double_bit": _int(retired.get("Double Bit ECC")) if isinstance(retired, dict) else None,
        "retired_pages_pending": retired.get("Pending Page Blacklist") if isinstance(retired, dict) else None,
        "remapped_rows_uncorrectable": _int(remapped.get("Uncorrectable Error")) if isinstance(remapped, dict)
        else None,
        "remapped_rows_pending": remapped.get("Pending") if isinstance(remapped, dict) else None,
        "remapping_failed": remapped.get("Remapping Failure Occurred") if isinstance(remapped, dict) else None,
        "temperature_c": _number(temp.get("GPU Current Temp")) if isinstance(temp, dict) else None,
        "sm_clock_mhz": _number(clocks.get("SM")) if isinstance(clocks, dict) else None,
        "max_sm_clock_mhz": _number(max_clocks.get("SM")) if isinstance(max_clocks, dict) else None,
    }


def gpu_health_problems(health: dict[str, Any], max_temperature_c: float = 85.0,
                        bad_reasons: tuple[str, ...] | list[str] = BAD_CLOCK_EVENT_REASONS) -> list[str]:
    """What is wrong with one GPU's health fields, one line each (an empty list means healthy)."""
    gpu = health.get("bus_id") or f"GPU {health.get('index')}"
    out = []
    for key, what in (("ecc_volatile_uncorrectable", "volatile uncorrectable ECC errors"),
                      ("ecc_aggregate_uncorrectable", "aggregate uncorrectable ECC errors"),
                      ("retired_pages_double_bit", "pages retired for double-bit ECC errors"),
                      ("remapped_rows_uncorrectable", "rows remapped for uncorrectable errors")):
        value = health.get(key)
        if value:
            out.append(f"{gpu}: {value} {what}")
    for key, what in (("retired_pages_pending", "page retirement pending (reset the GPU)"),
                      ("remapped_rows_pending", "row remapping pending (reset the GPU)"),
                      ("remapping_failed", "row remapping failed")):
        if str(health.get(key) or "").lower() in ("yes", "true"):
            out.append(f"{gpu}: {what}")
    bad = [r for r in health.get("clock_event_reasons") or [] if r in bad_reasons]
    if bad:
        out.append(f"{gpu}: clocks slowed by {', '.join(bad)}")
    temp = health.get("temperature_c")
    if temp is not None and temp > max_temperature_c:
        out.append(f"{gpu}: temperature {temp:g} C above {max_temperature_c:g} C")
    return out


# ---------------------------------------------------------------- dcgmi diag

_STATUS = {"pass": "Pass", "fail": "Fail", "warn": "Warn", "warning": "Warn", "skip": "Skip", "skipped": "Skip",
           "not run": "Skip", "n/a": "Skip"}
_BW = re.compile(r"(GPU to Host|Host to GPU|bidirectional) bandwidth:\s*([\d.]+)\s*GB/s", re.I)
_BW_KEY = {"gpu to host": "d2h_gbps", "host to gpu": "h2d_gbps", "bidirectional": "bidir_gbps"}


def _status(text: str) -> str:
    word = text.strip().split(" - ")[0].strip().lower()
    return _STATUS.get(word, text.strip().split(" - ")[0].strip() or "Unknown")


# Categories that only check the software and its setting; the others run work on the GPUs.
SOFTWARE_CATEGORIES = ("Metadata", "Deployment", "Software", "software", "deployment")


def _worst(statuses: list[str]) -> str:
    """One status for several: Fail over Warn over Pass over Skip (nothing reported: Skip)."""
    for status in ("Fail", "Warn", "Pass"):
        if status in statuses:
            return status
    known = [s for s in statuses if s != "Skip"]
    return known[0] if known else "Skip"


def _result(version: str | None, driver: str | None, tests: list[dict[str, Any]],
            bandwidth: dict[int, dict[str, float]], error: str | None = None) -> dict[str, Any]:
    failed = [t for t in tests if t["status"] == "Fail"]
    hardware = [t for t in tests if t.get("category") not in SOFTWARE_CATEGORIES]
    if error is None and hardware and all(t["status"] == "Skip" for t in hardware):
        error = "every hardware test was skipped (%s)" % ", ".join(str(t["name"]) for t in hardware)
    return {
        "dcgm_version": version, "driver_version": driver, "tests": tests,
        "passed": error is None and bool(tests) and not failed,
        "failed_tests": [t["name"] for t in failed],
        "error": error,
        "bandwidth": {str(k): v for k, v in sorted(bandwidth.items())},
    }


def _add_bandwidth(bandwidth: dict[int, dict[str, float]], gpu: int, lines: list[str]) -> None:
    for line in lines:
        for m in _BW.finditer(line):
            bandwidth.setdefault(gpu, {})[_BW_KEY[m.group(1).lower()]] = float(m.group(2))


def parse_dcgmi_diag_text(text: str) -> dict[str, Any]:
    """The table ``dcgmi diag -r N`` prints (DCGM 3 ``Pass - All`` rows and DCGM 4 per-GPU rows)."""
    version = driver = None
    tests: list[dict[str, Any]] = []
    category = None
    error = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Error:") and not tests:
            error = s
            continue
        m = re.match(r"^[|+]-+\s+(.+?)\s+-+\+", s)
        if m:
            category = m.group(1)
            continue
        if not s.startswith("|") or s.startswith("|="):
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if len(cells) != 2 or cells == ["Diagnostic", "Result"]:
            continue
        left, right = cells
        if category == "Metadata":
            if left == "DCGM Version":
                version = right
            elif left == "Driver Version Detected":
                driver = right
            continue
        g = re.match(r"^GPU\s*(\d+)\s*:\s*(\w+)", right)
        cont = re.match(r"^(Pass|Fail|Warn|Warning|Skip)\s+-\s+(GPUs?:?\s*[\d, ]+|All)$", right)
        if not left and g and tests:
            tests[-1]["gpus"][g.group(1)] = _status(g.group(2))
            tests[-1]["status"] = _worst([tests[-1]["status"], _status(g.group(2))])
        elif not left and cont and tests:
            # DCGM 3 prints one row per status of a test: "Pass - GPU: 0" then "|   | Fail - GPU: 1"
            status = _status(cont.group(1))
            for gid in re.findall(r"\d+", cont.group(2)):
                tests[-1]["gpus"][gid] = status
            tests[-1]["status"] = _worst([tests[-1]["status"], status])
        elif left in ("Error", "Warning", "Info") and tests:
            tests[-1]["messages"].append(f"{left}: {right}")
        elif left == "" and tests:
            if tests[-1]["messages"]:
                tests[-1]["messages"][-1] += " " + right
        elif left:
            status = _status(right)
            entry: dict[str, Any] = {"category": category, "name": left, "status": status, "gpus": {},
                                     "messages": []}
            gm = re.search(r" - GPU[s]?:?\s*([\d, ]+)$", right)
            if gm:
                for gid in re.findall(r"\d+", gm.group(1)):
                    entry["gpus"][gid] = status
            tests.append(entry)
    return _result(version, driver, tests, {}, error if not tests else None)


def parse_dcgmi_diag_json(text: str) -> dict[str, Any]:
    """``dcgmi diag -r N -j``: DCGM 4 (``DCGM Diagnostic``, entity results) and DCGM 3 (``gpu_ids``)."""
    try:
        data = json.loads(text)
    except ValueError:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
        return _result(None, None, [], {}, first)
    if not isinstance(data, dict):
        return _result(None, None, [], {}, "dcgmi printed JSON that is not an object")
    body = data.get("DCGM Diagnostic") or data.get("DCGM GPU Diagnostic") or {}
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    version = data.get("version") or meta.get("DCGM Version") or meta.get("version")
    driver = (data.get("driver_version_detected") or data.get("Driver Version Detected")
              or meta.get("Driver Version Detected"))
    tests: list[dict[str, Any]] = []
    bandwidth: dict[int, dict[str, float]] = {}
    for cat in body.get("test_categories") or []:
        for test in cat.get("tests") or []:
            entry: dict[str, Any] = {"category": cat.get("category"), "name": test.get("name"), "gpus": {},
                                     "messages": []}
            statuses = []
            for res in test.get("results") or []:
                status = _status(str(res.get("status", "")))
                statuses.append(status)
                ids = res.get("entity_id", res.get("gpu_id", res.get("gpu_ids")))
                gids = [int(x) for x in re.findall(r"\d+", str(ids))] if ids is not None else []
                for gid in gids:
                    entry["gpus"][str(gid)] = status
                info = res.get("info") or []
                info = [info] if isinstance(info, str) else [str(x) for x in info]
                if len(gids) == 1:
                    _add_bandwidth(bandwidth, gids[0], info)
                for w in res.get("warnings") or []:
                    msg = w.get("warning") if isinstance(w, dict) else w
                    entry["messages"].append(f"Error: {msg}")
                if res.get("error"):
                    entry["messages"].append(f"Error: {res['error']}")
            summary = test.get("test_summary") or {}
            if summary.get("status"):  # a summary never hides a GPU that failed
                statuses.append(_status(str(summary["status"])))
            entry["status"] = _worst(statuses)
            tests.append(entry)
    return _result(str(version) if version else None, str(driver) if driver else None, tests, bandwidth)


def diag_problems(diag: dict[str, Any]) -> list[str]:
    """One line per failed test (with the GPUs that failed) or the error that stopped the diagnostic."""
    if diag.get("error"):
        return [f"dcgmi diag: {diag['error']}"]
    if not diag.get("tests"):
        return ["dcgmi diag: no test results"]
    out = []
    for t in diag["tests"]:
        if t["status"] == "Fail":
            gpus = sorted((g for g, s in t["gpus"].items() if s == "Fail"), key=int)
            where = f" on GPU {', '.join(gpus)}" if gpus else ""
            detail = "; ".join(t["messages"])
            out.append(f"dcgmi diag {t['category']}/{t['name']} failed{where}" + (f": {detail}" if detail else ""))
    return out


def min_bandwidth(diag: dict[str, Any], key: str = "h2d_gbps") -> float | None:
    """The slowest GPU's figure: one weak GPU makes the host a straggler."""
    values = [v[key] for v in (diag.get("bandwidth") or {}).values() if key in v]
    return min(values) if values else None


# ---------------------------------------------------------------- Xid errors in the kernel log

# "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus." (driver 450 and later);
# older drivers print "NVRM: Xid (0000:3b:00): 13, ...". Codes: https://docs.nvidia.com/deploy/xid-errors/
_XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9A-Fa-f:.]+)\): (\d+)(?:,\s*(.*))?")


def parse_xid(text: str) -> list[dict[str, Any]]:
    """Every ``NVRM: Xid`` line of a kernel log: the GPU's PCI address, the code and the driver's words."""
    out = []
    for line in text.splitlines():
        m = _XID.search(line)
        if m:
            out.append({"bus_id": m.group(1), "code": int(m.group(2)), "text": (m.group(3) or "").strip(),
                        "line": line.strip()})
    return out


def xid_problems(events: list[dict[str, Any]]) -> list[str]:
    """One line per GPU naming its Xid codes (an empty list: no Xid since the upgrade started)."""
    by_bus: dict[str, list[int]] = {}
    for e in events:
        codes = by_bus.setdefault(e["bus_id"], [])
        if e["code"] not in codes:
            codes.append(e["code"])
    return ["GPU %s: Xid %s in the kernel log" % (bus, ", ".join(str(c) for c in codes))
            for bus, codes in sorted(by_bus.items())]
