"""Graphs of a plan as text: DOT (Graphviz) and Mermaid. Pure functions; the CLI prints them."""

from __future__ import annotations

from orchestrator.planner.model import HostPlan, Plan


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _change(h: HostPlan) -> str:
    parts = [f"{s.component} {s.from_version or '-'} -> {s.to_version or '-'}" for s in h.steps if s.component]
    return "\\n".join(parts)


def _mid(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def render_dot(plan: Plan) -> str:
    """Waves as clusters of hosts, in order; each wave's gate (end + soak) leads to the next."""
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    previous = None
    for w in plan.waves:
        lines.append(f"  subgraph cluster_{w.index} {{")
        label = f"{w.name}: {len(w.hosts)} hosts, {w.gpus_out} GPUs out, ~{w.estimate_s // 60} min"
        lines.append(f"    label={_q(label)};")
        for name in w.hosts:
            h = plan.host(name)
            lines.append(f"    {_q(name)} [label={_q(name + chr(92) + 'n' + h.pool)}];")
        lines.append("  }")
        gate = f"gate_{w.index}"
        lines.append(f"  {gate} [shape=diamond, label={_q(f'{w.name} done + soak {w.soak_s // 60} min')}];")
        for name in w.hosts:
            lines.append(f"  {_q(name)} -> {gate};")
        if previous is not None:
            for name in w.hosts:
                lines.append(f"  {previous} -> {_q(name)};")
        previous = gate
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_host_dot(plan: Plan, host: str) -> str:
    """One host's step DAG."""
    h = plan.host(host)
    lines = [f"digraph {_q(host)} {{", "  rankdir=TB;", "  node [shape=box, fontsize=10];"]
    for s in h.steps:
        label = s.id if not s.component else f"{s.id}\\n{s.from_version} -> {s.to_version}"
        lines.append(f"  {_q(s.id)} [label={_q(label)}];")
        for n in s.needs:
            lines.append(f"  {_q(n)} -> {_q(s.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(plan: Plan) -> str:
    """The same wave graph as Mermaid ``flowchart`` text (renders in GitHub and GitLab markdown)."""
    lines = ["flowchart LR"]
    previous = None
    for w in plan.waves:
        label = f"{w.name}: {len(w.hosts)} hosts, {w.gpus_out} GPUs out, ~{w.estimate_s // 60} min"
        lines.append(f'  subgraph W{w.index}["{label}"]')
        for name in w.hosts:
            lines.append(f'    {_mid(name)}["{name} ({plan.host(name).pool})"]')
        lines.append("  end")
        gate = f"G{w.index}"
        lines.append(f'  {gate}{{"{w.name} done + soak {w.soak_s // 60} min"}}')
        lines.append(f"  W{w.index} --> {gate}")
        if previous is not None:
            lines.append(f"  {previous} --> W{w.index}")
        previous = gate
    return "\n".join(lines) + "\n"
