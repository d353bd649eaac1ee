"""The long fault campaign (issue 20): every lab fault alone, in the canary and in a later wave, on a fresh lab.

CI runs the short campaign (tests/executor/test_fault_campaign.py: several faults in one run). This one takes
about 3-5 minutes per case. For each case it prints the exit code, every host's final state and reason, the
Slurm node states, and whether every host's installed driver matches its journal state (done: the target,
rolled back: the start). Needs root (the lab).

    python3 benchmarks/fault_campaign.py [--only FAULT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.lab import slurm  # noqa: E402
from orchestrator.lab.faults import Fault  # noqa: E402
from orchestrator.lab.lab import Lab  # noqa: E402

POOLS = {
    "training": {"target": {"driver": "580.95.05", "kernel_module": "open", "fabric_manager": "580.95.05"}},
    "inference": {"target": {"driver": "580.95.05", "kernel_module": "proprietary"}, "policy": {"max_unavailable": 1}},
}
POLICY = {"canary": 1, "waves": ["100%"], "max_unavailable": 2, "soak": 0, "gates": ["dcgm-r1"],
          "failure_budget": {"per_wave": 1, "total": 2}, "drain": {"timeout": 60}, "unreachable_retry": 30}
FAST = ["-e", "upgrade_driver_reboot_timeout_s=40", "-e", "drain_timeout_s=60"]
CASES: dict[Fault, dict[str, Any]] = {
    Fault.INSTALL_FAILS: {"packages": ("nvidia-driver-580-open", "nvidia-driver-580")},
    Fault.REBOOT_HANGS: {},
    Fault.DIAG_FAILS: {},
    Fault.GPU_SLOW: {},
    Fault.SSH_DOWN: {"seconds": 10},
    Fault.BLOCKING_JOB: {"seconds": 600},
    Fault.MODULE_NOT_LOADED: {},
}


def upgrade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False, stdin=subprocess.DEVNULL, timeout=1800)


def one(lab: Lab, fault: Fault, wave: int, work: Path) -> dict[str, Any]:
    lab.down()
    state = lab.up(6, work / "inventory")
    desired = work / "desired.yaml"
    desired.write_text(yaml.safe_dump({"version": 1, "policy": POLICY, "pools": POOLS}))
    plan_path = work / "plan.json"
    made = upgrade("plan", "-i", state.inventory, str(desired), "-o", str(plan_path))
    if made.returncode != 0:
        return {"error": made.stderr.strip()}
    plan = json.loads(plan_path.read_text())
    victim = plan["waves"][wave]["hosts"][0]
    lab.inject(victim, fault, **CASES[fault])
    summary: dict[str, Any] = {}
    code = 0
    for spec in ["canary", "next"][: wave + 1]:
        run = upgrade("apply", str(plan_path), "--wave", spec, "--yes", "--output", "json", "--ignore-window",
                      "--state-dir", str(work / "state"), *FAST)
        code = run.returncode
        summary.update(json.loads(run.stdout)["hosts"] if run.stdout.strip() else {})
    facts = {h["host"]: h for h in json.loads(upgrade("facts", "-i", state.inventory, "--output",
                                                       "json").stdout)["hosts"]}
    matches = all(facts[h]["driver"]["version"] == {"done": "580.95.05", "rolled_back": "535.183.01"}[s["state"]]
                  for h, s in summary.items() if s["state"] in ("done", "rolled_back") and h in facts)
    nodes = {h: slurm.run(lab.paths, "sinfo", "-h", "-n", h, "-o", "%T").strip() for h in summary}
    return {"fault": fault.value, "wave": plan["waves"][wave]["name"], "victim": victim, "exit": code,
            "victim_state": summary.get(victim, {}), "stacks_match_journal": matches, "nodes": nodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=[f.value for f in Fault])
    args = parser.parse_args()
    lab = Lab()
    for fault in CASES:
        if args.only and fault.value != args.only:
            continue
        for wave in (0, 1):
            with tempfile.TemporaryDirectory() as tmp:
                print(json.dumps(one(lab, fault, wave, Path(tmp))), flush=True)
    lab.down()


if __name__ == "__main__":
    main()
