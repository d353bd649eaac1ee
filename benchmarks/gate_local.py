"""How long the level-1 gate takes on this machine (target: under 30 s per host; the issue's speed figure).

Runs `upgrade gate --local --output json` a few times and prints each run's wall time, the gate's own time and
the per-check times (driver probe, runtime, cuDNN), plus the figures. On a machine without a GPU the gate fails
fast and says why; the times are still printed. On the real H200 (tests/fixtures/device-h200/): 0.69 s inside
the gate, 2.35 to 2.58 s for the whole command.

    python3 benchmarks/gate_local.py [RUNS] [-- extra upgrade gate options, e.g. --lib-dir DIR --cuda 13.0]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def main() -> None:
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    runs = int(args[0]) if args and args[0] != "--" else 3
    for i in range(runs):
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "orchestrator", "gate", "--local", "--output", "json", *extra],
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        data = json.loads(proc.stdout)
        checks = {k: v.get("seconds") for k, v in data["probe"].items() if v}
        print(f"run {i + 1}: exit {proc.returncode}, {wall:.2f} s wall, gate {data['seconds']:.3f} s, checks {checks}")
    print("figures:", json.dumps(data["figures"]))
    print("problems:", data["problems"] or "none")
    print(f"target: under 30 s per host: {'met' if wall < 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
