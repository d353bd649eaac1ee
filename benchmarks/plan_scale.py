"""Plan generated fleets of 1k, 10k, 100k and 1M hosts; print time, peak memory and plan size for each.

Targets on a 2-core machine: 10k <= 0.5 s, 100k <= 5 s and <= 500 MB, 1M <= 60 s and <= 4 GB, plan file
<= 100 bytes per host. Run: python benchmarks/plan_scale.py [HOSTS ...] (each size in a fresh process, so
peak memory is its own). CPU seconds are printed beside wall seconds: on a shared machine the wall clock
also counts other people's work. The fleet: tests/support/bigfleet.py (21 pools on racks of 16, drift, cordoned,
unknown and no-build hosts, the example's policy with max_unavailable 10%).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [1_000, 10_000, 100_000, 1_000_000]


def _rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB); tracemalloc would slow planning 4x."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(n: int) -> None:
    from orchestrator.knowledge import load_knowledge
    from orchestrator.planner import build_plan, load_plan, plan_json
    from tests.support.bigfleet import fleet

    knowledge = load_knowledge()
    fl, unknown, desired = fleet(n)
    base_rss = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    plan = build_plan(fl, desired, None, knowledge, datetime(2026, 12, 1, 9, tzinfo=UTC), unknown=unknown)
    t1, c1 = time.perf_counter(), time.process_time()
    text = plan_json(plan)
    t2 = time.perf_counter()
    rss = _rss_mb()
    path = Path(f"/tmp/plan-scale-{n}.plan.json")
    path.write_text(text, encoding="utf-8")
    t3 = time.perf_counter()
    load_plan(path)
    t4 = time.perf_counter()
    path.unlink()
    size = len(text.encode("utf-8"))
    print(f"{n:>9} hosts: build_plan {t1 - t0:6.2f} s ({c1 - c0:.2f} s CPU), plan_json {t2 - t1:5.2f} s, "
          f"load_plan {t4 - t3:5.2f} s; "
          f"peak RSS {rss:6.0f} MB (fleet alone {base_rss:.0f} MB); plan {size / 1e6:7.1f} MB "
          f"= {size / n:5.1f} bytes/host; {len(plan.classes)} classes, {len(plan.waves)} waves, "
          f"{sum(len(w.hosts) for w in plan.waves)} moving", flush=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        one(int(sys.argv[2]))
        return
    sizes = [int(a) for a in sys.argv[1:]] or SIZES
    for n in sizes:
        subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)


if __name__ == "__main__":
    main()
