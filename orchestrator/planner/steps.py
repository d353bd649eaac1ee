"""A host's step graph: precheck, cordon, drain, the ordered component changes, reboot, verify, gates, uncordon.

The graph is a networkx DAG so later work (parallel steps, resume from a failed node) keeps one shape; the
plan stores it as steps in a stable topological order, each naming the steps it ``needs``.
"""

from __future__ import annotations

import networkx as nx

from orchestrator.model.policy import Estimates, Gate
from orchestrator.model.stack import SoftwareStack
from orchestrator.planner.model import Step, StepKind

# Components whose change replaces the loaded kernel module, so the host must reboot.
KERNEL_MODULE_COMPONENTS = frozenset({"driver", "kernel_module"})


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def step_graph(
    before: SoftwareStack,
    after: SoftwareStack,
    order: tuple[tuple[str, ...], ...],
    gates: tuple[Gate, ...],
    estimates: Estimates,
) -> nx.DiGraph[str]:
    """The DAG of one host's upgrade; nodes carry a ``step`` attribute, edges mean "runs after"."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    seq = 0

    def add(kind: StepKind, estimate: int, name: str | None = None, prev: list[str] | None = None,
            **fields: object) -> str:
        nonlocal seq
        seq += 1
        sid = f"{seq:02d}-{name or kind.value}"
        needs = tuple(prev or ())
        graph.add_node(sid, seq=seq, step=Step(id=sid, kind=kind, estimate_s=estimate, needs=needs, **fields))
        for p in needs:
            graph.add_edge(p, sid)
        return sid

    last = [add(StepKind.PRECHECK, estimates.precheck)]
    last = [add(StepKind.CORDON, estimates.cordon, prev=last)]
    last = [add(StepKind.DRAIN, estimates.drain, prev=last)]
    reboot = False
    for gi, group in enumerate(order, start=1):
        for component in group:
            needs_reboot = component in KERNEL_MODULE_COMPONENTS
            reboot = reboot or needs_reboot
            last = [add(StepKind.CHANGE, int(getattr(estimates, component)), name=component, prev=last,
                        component=component, from_version=_text(before.component(component)),
                        to_version=_text(after.component(component)), group=gi, needs_reboot=needs_reboot)]
    if reboot:
        last = [add(StepKind.REBOOT, estimates.reboot, prev=last)]
    last = [add(StepKind.VERIFY, estimates.verify, prev=last)]
    for gate in gates:
        last = [add(StepKind.VALIDATE, estimates.gate(gate), name=f"validate-{gate.value}", prev=last,
                    gate=gate.value)]
    add(StepKind.UNCORDON, estimates.uncordon, prev=last)
    return graph


def ordered_steps(graph: nx.DiGraph[str]) -> tuple[Step, ...]:
    """Steps in a stable topological order (ties broken by creation order)."""
    nodes = nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["seq"])
    return tuple(graph.nodes[n]["step"] for n in nodes)


def critical_path_s(steps: tuple[Step, ...]) -> int:
    """Seconds from the first step to the last along the longest chain of ``needs``."""
    finish: dict[str, int] = {}
    for s in steps:
        finish[s.id] = s.estimate_s + max((finish[n] for n in s.needs), default=0)
    return max(finish.values(), default=0)
