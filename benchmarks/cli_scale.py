"""Time `upgrade facts --snapshot`, `upgrade check` and `upgrade plan` end to end on a 10,000-host fleet.

Target on a 2-core machine: each <= 10 s. Run: python benchmarks/cli_scale.py [HOSTS] [--keep DIR]. Writes a
YAML inventory (three pools of the example, racks of 16, 1% cordoned by hand) and a facts snapshot whose
records are the example's own (inventories/example/facts.json, renamed; one host in five with the drifted
NCCL, 1% unreachable), then runs each command twice in a fresh process: the first run fills Ansible's
inventory cache, the second shows the usual time. Prints wall and CPU seconds (the wall clock of a shared
machine counts other people's work too) and the lines each printed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.bigfleet import write_desired, write_inventory_and_snapshot  # noqa: E402


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _run(args: list[str], env: dict[str, str]) -> tuple[float, int, int, float]:
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return elapsed, proc.returncode, proc.stdout.count("\n"), cpu


def main() -> None:
    args = sys.argv[1:]
    keep = Path(args[args.index("--keep") + 1]) if "--keep" in args else None
    numbers = [a for a in args if a.isdigit()]
    n = int(numbers[0]) if numbers else 10_000
    with tempfile.TemporaryDirectory(prefix="cli-scale-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        inventory, facts = write_inventory_and_snapshot(n, folder)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(folder / "cache")}
        desired = str(write_desired(folder))
        commands = {
            "facts --snapshot": ["facts", "-i", str(inventory), "--snapshot", str(facts)],
            "check": ["check", desired, "-i", str(inventory), "--facts", str(facts)],
            "plan": ["plan", desired, "-i", str(inventory), "--facts", str(facts), "-o", str(folder / "p.plan.json"),
                     "--now", "2026-12-01T21:00:00+00:00"],
        }
        print(f"{n} hosts: inventory {inventory.stat().st_size / 1e6:.1f} MB, "
              f"snapshot {facts.stat().st_size / 1e6:.1f} MB")
        for label, command in commands.items():
            first = _run(command, env)
            again = _run(command, env)
            print(f"  upgrade {label:<17} {again[0]:6.2f} s, {again[3]:5.2f} s CPU (first run {first[0]:6.2f} s), "
                  f"exit {again[1]}, "
                  f"{again[2]} lines of output", flush=True)


if __name__ == "__main__":
    main()
