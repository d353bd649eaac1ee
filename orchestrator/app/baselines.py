"""Each host's figures before its upgrade: the baseline the straggler rules compare its gates with afterwards.

Before a run changes a host that has no baseline yet, the gate without DCGM (``gate_level`` 0: the CUDA probe,
health, versions, Xid) runs on it as it is, with ``gate_fail`` off: a host whose old stack already fails a gate
still gives its figures, and the run goes on to its planned precheck and upgrade. The figures go to the
journal's baselines, kept across runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from orchestrator.planner.model import Step, StepKind
from orchestrator.ports import HostActions, JournalPort
from orchestrator.run.stragglers import STRAGGLER_METRICS

BASELINE_STEP = Step(id="baseline-gate", kind=StepKind.GATE, gate="baseline", estimate_s=30, playbook="gate.yml",
                     vars={"gate_level": 0, "gate_expect_driver": "", "gate_fail": False})


def measure_baselines(port: HostActions, journal: JournalPort, hosts: Iterable[str],
                      parallel: int | None = None) -> dict[str, dict[str, float]]:
    """Run the baseline gate on ``hosts`` and keep their straggler figures; a host that gave none is left out."""
    todo = sorted(set(hosts))
    if not todo:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel or 8, len(todo)))) as pool:
        outcomes = dict(zip(todo, pool.map(lambda h: port.run_step(h, BASELINE_STEP), todo), strict=True))
    measured: dict[str, dict[str, float]] = {}
    for host, outcome in outcomes.items():
        raw = outcome.data.get("figures") or {}
        figures = {m: float(raw[m]) for m in STRAGGLER_METRICS if isinstance(raw.get(m), int | float)}
        for metric, value in figures.items():
            journal.put_baseline(host, metric, value)
        if figures:
            measured[host] = figures
    return measured
