"""Controller CPU seconds per host-step on the lab, with and without shared playbook runs.

For each fleet size (6 and 24 lab hosts: `upgrade lab up --hosts N`) the lab comes up fresh twice and
`upgrade apply --wave all --flow` moves every host's driver from R535 to R580: once with one
`ansible-playbook` per host and step, once with `--share-window 3` (hosts reaching the same step within 3 s
share one run with `--limit`, a fork each; every host's result is still journaled on its own). The controller's
CPU time is the apply process and all its children (ansible-playbook, ssh), from ``getrusage(RUSAGE_CHILDREN)``
around it; host-steps are the journal's ``step_end`` records. Needs root and the lab lock:

    flock /tmp/gpu-lab.lock env GPU_LAB_STATE=/var/lib/gpu-lab-$NAME python3 benchmarks/shared_playbooks.py
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.lab.lab import Lab  # noqa: E402

DESIRED = {
    "version": 1,
    "policy": {"canary": 1, "waves": ["100%"], "max_unavailable": "50%", "soak": 0, "gates": ["dcgm-r1"],
               "failure_budget": {"per_wave": 0, "total": 0}},
    "pools": {
        "training": {"target": {"driver": "580.95.05", "kernel_module": "open", "fabric_manager": "580.95.05"}},
        "inference": {"target": {"driver": "580.95.05", "kernel_module": "proprietary"}},
    },
}


def upgrade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False, stdin=subprocess.DEVNULL)


def cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one(lab: Lab, hosts: int, share: float, tmp: Path) -> tuple[float, int, float]:
    if lab.is_up():
        lab.down()
    inventory = Path(lab.up(hosts, tmp / f"inv-{hosts}-{share}").inventory)
    try:
        desired = tmp / "desired.yaml"
        desired.write_text(yaml.safe_dump(DESIRED))
        plan = tmp / f"bench-{hosts}-{share}.plan.json"
        made = upgrade("plan", "-i", str(inventory), str(desired), "-o", str(plan), "--output", "json")
        if made.returncode != 0:
            raise SystemExit(f"plan failed: {made.stdout}{made.stderr}")
        state = tmp / f"state-{hosts}-{share}"
        c0, t0 = cpu_children(), time.monotonic()
        result = upgrade("apply", str(plan), "--wave", "all", "--flow", "--yes", "--ignore-window", "--output",
                         "json", "--state-dir", str(state), "--share-window", str(share))
        cpu, wall = cpu_children() - c0, time.monotonic() - t0
        if result.returncode != 0:
            raise SystemExit(f"apply exited {result.returncode}: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        with sqlite3.connect(state / "journal.db") as db:
            steps = int(db.execute("SELECT count(*) FROM events WHERE kind = 'step_end'").fetchone()[0])
        return cpu, steps, wall
    finally:
        lab.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[6, 24])
    ap.add_argument("--share-window", type=float, default=3.0)
    args = ap.parse_args()
    lab = Lab()
    with tempfile.TemporaryDirectory(prefix="shared-bench-") as tmp_dir:
        for hosts in args.hosts:
            for share in (0.0, args.share_window):
                cpu, steps, wall = one(lab, hosts, share, Path(tmp_dir))
                label = f"shared ({share:g} s window)" if share else "one run per host-step"
                print(f"{hosts:>3} hosts, {label:<26}: {cpu:7.1f} CPU s / {steps:4d} host-steps = "
                      f"{cpu / steps:5.2f} CPU s per host-step (wall {wall:6.1f} s)", flush=True)


if __name__ == "__main__":
    main()
