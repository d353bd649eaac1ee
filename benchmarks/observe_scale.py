"""Follow a 10,000-host run: fold its events into the view, draw the live table, scrape the metrics; print the
time of each. Targets: a redraw well under the live table's 0.5 s refresh, a scrape (one gate-figure series per
host) well under Prometheus's usual 15 s scrape interval.

Run: python benchmarks/observe_scale.py [HOSTS]. A synthetic run: 21 pools, four waves; every host of the first
three waves goes through 13 steps (one in a hundred fails its driver step and is rolled back), the last wave runs.
"""

from __future__ import annotations

import io
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import generate_latest  # noqa: E402
from rich.console import Console  # noqa: E402

from orchestrator.adapters.metrics import RunMetrics  # noqa: E402
from orchestrator.app.view import HostView, RunView, WaveView  # noqa: E402
from orchestrator.cli.progress import render_view  # noqa: E402

STEPS = ["precheck", "drain", "driver", "fabric_manager", "cudnn", "cuda", "nccl", "container_toolkit", "dcgm",
         "reboot", "verify", "gate", "uncordon"]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    start = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    view = RunView(run_id="run-bench")
    names = [f"gpu-{i:05d}" for i in range(n)]
    sizes = [max(1, n // 100), n // 4, n // 2]
    bounds = [0, sizes[0], sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2], n]
    for w in range(4):
        hosts = names[bounds[w]:bounds[w + 1]]
        view.waves[f"wave-{w}"] = WaveView(f"wave-{w}", hosts, failure_budget=max(1, len(hosts) // 50),
                                           slot_limit=max(1, n // 10))
        for h in hosts:
            view.hosts[h] = HostView(h, f"wave-{w}", pool=f"pool-{hash(h) % 21:02d}", gpu="H100")
    t0 = time.perf_counter()
    events = 0
    at = start
    for i, name in enumerate(names):
        wave = view.hosts[name].wave
        view.moved(name, wave, "cordoned", "", at)
        last = len(STEPS) if wave != "wave-3" else 4  # the last wave is under way
        for step in STEPS[:last]:
            at += timedelta(milliseconds=50)
            view.step_started(name, step, "upgrade", at)
            ok = not (i % 100 == 7 and step == "driver")
            view.step_ended(name, step, ok, "" if ok else "E: boom", at + timedelta(seconds=30),
                            {"pcie_h2d_gbps": 50.0} if step == "gate" else None)
            events += 2
            if not ok:
                view.moved(name, wave, "rolled_back", "driver failed", at)
                break
        else:
            view.moved(name, wave, "done" if last == len(STEPS) else "upgrading", "", at)
        events += 2
    for w in range(3):
        view.wave_ended(f"wave-{w}", "passed", "")
    fold = time.perf_counter() - t0
    t0 = time.perf_counter()
    Console(file=io.StringIO(), width=160).print(render_view(view, at))
    draw = time.perf_counter() - t0
    metrics = RunMetrics()
    metrics.view = view
    metrics.wave_order = list(view.waves)
    t0 = time.perf_counter()
    text = generate_latest(metrics.registry)
    scrape = time.perf_counter() - t0
    print(f"{n} hosts, {events} events folded in {fold:.2f} s ({events / fold:,.0f}/s); live-table redraw "
          f"{draw * 1000:.0f} ms; metrics scrape {scrape * 1000:.0f} ms ({len(text) // 1024} KiB)")


if __name__ == "__main__":
    main()
