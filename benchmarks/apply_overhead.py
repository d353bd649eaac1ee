"""Overhead of `upgrade apply` against plain `ansible-playbook` batches running the same roles on the lab.

Both move the lab fleet's driver from R535 to R580 (fabric manager with it on NVSwitch hosts) in the plan's
waves. `upgrade apply` adds its safety work (precheck and verify facts, package resolution, journal, gates,
per-host sliding window); the plain run calls drain, upgrade (with reboot), validate and uncordon per batch.
Prints both wall times and their ratio (target <= 1.25). Needs root; brings the lab up fresh for each side.

    python3 benchmarks/apply_overhead.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.adapters.ansible import run_playbook  # noqa: E402
from orchestrator.lab.lab import Lab  # noqa: E402

DESIRED = {
    "version": 1,
    "policy": {"canary": 1, "waves": ["100%"], "max_unavailable": 2, "soak": 0, "gates": ["dcgm-r1"],
               "failure_budget": {"per_wave": 0, "total": 0}},
    "pools": {
        "training": {"target": {"driver": "580.95.05", "kernel_module": "open", "fabric_manager": "580.95.05"}},
        "inference": {"target": {"driver": "580.95.05", "kernel_module": "proprietary"},
                      "policy": {"max_unavailable": 1}},
    },
}
DRIVER = "580.95.05-0ubuntu1"
FABRIC_MANAGER = "580.95.05-1"


def upgrade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False, stdin=subprocess.DEVNULL)


def fresh(lab: Lab, where: Path) -> Path:
    if lab.is_up():
        lab.down()
    return Path(lab.up(6, where).inventory)


def with_apply(lab: Lab, tmp: Path) -> tuple[float, dict[str, object]]:
    inventory = fresh(lab, tmp / "inv-apply")
    desired = tmp / "desired.yaml"
    desired.write_text(yaml.safe_dump(DESIRED))
    plan = tmp / "bench.plan.json"
    made = upgrade("plan", "-i", str(inventory), str(desired), "-o", str(plan), "--output", "json")
    if made.returncode != 0:
        raise SystemExit(f"plan failed: {made.stderr}")
    start = time.monotonic()
    result = upgrade("apply", str(plan), "--wave", "all", "--yes", "--ignore-window", "--output", "json",
                     "--state-dir", str(tmp / "state"))
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"apply exited {result.returncode}: {result.stdout}{result.stderr}")
    return elapsed, json.loads(plan.read_text())


def with_ansible(lab: Lab, tmp: Path, plan: dict[str, object]) -> float:
    inventory = fresh(lab, tmp / "inv-plain")
    classes = plan["classes"]
    hosts = {row[0]: classes[row[2]] for row in plan["rows"]}  # type: ignore[index, union-attr, call-overload]
    start = time.monotonic()
    for wave in plan["waves"]:  # type: ignore[union-attr]
        batch = list(wave["hosts"])  # type: ignore[index]
        by_pool: dict[str, list[str]] = {}
        for name in batch:
            by_pool.setdefault(hosts[name]["pool"], []).append(name)
        limit = ",".join(batch)
        run_playbook("drain.yml", inventory, limit=limit, forks=len(batch))
        for pool, members in sorted(by_pool.items()):
            flavor = DESIRED["pools"][pool]["target"]["kernel_module"]  # type: ignore[index]
            run_playbook("upgrade_host.yml", inventory, limit=",".join(members), forks=len(members),
                         extravars={"upgrade_host_component": "driver", "upgrade_host_version": DRIVER,
                                    "upgrade_host_kernel_module": flavor, "upgrade_host_reboot": True})
            if pool == "training":
                run_playbook("upgrade_host.yml", inventory, limit=",".join(members), forks=len(members),
                             extravars={"upgrade_host_component": "fabric_manager",
                                        "upgrade_host_version": FABRIC_MANAGER})
        run_playbook("gate.yml", inventory, limit=limit, forks=len(batch), extravars={"gate_level": 1})
        run_playbook("uncordon.yml", inventory, limit=limit, forks=len(batch))
    return time.monotonic() - start


def main() -> None:
    lab = Lab()
    with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            applied, plan = with_apply(lab, tmp)
            plain = with_ansible(lab, tmp, plan)
        finally:
            if lab.is_up():
                lab.down()
    waves = len(plan["waves"])  # type: ignore[arg-type]
    print(f"hosts: {len(plan['rows'])}, waves: {waves}")  # type: ignore[arg-type]
    print(f"upgrade apply:                 {applied:7.1f} s")
    print(f"ansible-playbook (serial):     {plain:7.1f} s")
    print(f"ratio apply / plain:           {applied / plain:7.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
