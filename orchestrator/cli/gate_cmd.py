"""`upgrade gate --local`: the gates on the machine it runs on (CUDA probe, health, versions, Xid, DCGM)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.app.gate_local import gate_local
from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, print_json
from orchestrator.errors import InputError

FIGURE_LABELS = {"h2d_gbps": "host to device (pinned), GB/s", "d2h_gbps": "device to host (pinned), GB/s",
                 "device_copy_gbps": "device copy (read + write), GB/s", "fp32_tflops": "FP32 FMA, TFLOP/s",
                 "ptx_jit_ms": "PTX JIT, ms", "nccl_busbw_gbps": "NCCL all-reduce bus bandwidth, GB/s",
                 "workload_s": "workload, s", "pcie_h2d_gbps": "DCGM host to device, GB/s"}


@app.command("gate")
def gate(
    local: bool = typer.Option(False, "--local", help="Run the gates on this machine (run it on a GPU node)."),
    level: int = typer.Option(1, "--level", help="1: probe, health, versions, Xid; 2: + NCCL, DCGM; 3: DCGM -r 2."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output", help="table for people, json for CI."),
    expect_driver: str | None = typer.Option(None, "--expect-driver", help="Driver version every GPU must show."),
    cuda: str | None = typer.Option(None, "--cuda", help="Planned CUDA (X.Y): its libcudart.so.X is checked."),
    cudnn: bool = typer.Option(False, "--cudnn", help="cuDNN must load (the plan installs it)."),
    since: float | None = typer.Option(None, "--since", help="Xid errors since this time (epoch s; default boot)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds each check may take before it fails."),
    lib_dir: list[str] = typer.Option([], "--lib-dir", help="Another folder to look for CUDA libraries in."),
) -> None:
    """Prove this machine's GPU stack runs GPU work: a kernel launch, the runtime, libraries, health and figures.

    Exit 0: every gate passed; 1: a gate failed; 2: bad input.
    """
    if not local:
        raise InputError("upgrade gate", "give --local (hosts run the gates through the gate role in apply)")
    result = gate_local(level, expect_driver=expect_driver, cuda_version=cuda, need_cudnn=cudnn, since=since,
                        timeout=timeout, library_dirs=lib_dir)
    data = result.model_dump(mode="json")
    if output == OutputFormat.JSON:
        print_json(data)
    else:
        _render(data)
    raise typer.Exit(int(Exit.OK if result.passed else Exit.WARNINGS))


def _render(result: dict[str, Any]) -> None:
    probe = result["probe"]
    table = Table(title=f"gate level {result['level']}: {'passed' if result['passed'] else 'FAILED'} "
                  f"in {result['seconds']:g} s", title_justify="left", show_header=False)
    table.add_column("check")
    table.add_column("result")
    driver = probe.get("driver") or {}
    gpus = driver.get("gpus") or []
    table.add_row("CUDA driver API", f"{driver.get('cuda_driver_version') or '-'}, {len(gpus)} GPU(s): "
                  + ", ".join(f"{g['index']}: {g['name']} (cc {g['compute_capability']})" for g in gpus))
    for key in ("runtime", "cudnn", "nccl"):
        check = probe.get(key)
        if check:
            version = check.get("runtime_version") or check.get("version") or ""
            why = check.get("error") or check.get("note")
            table.add_row(key, ("ok " if check.get("ok") else "FAILED ") + str(version) + (f" ({why})" if why else ""))
    xid = result["xid"]
    table.add_row("Xid", ", ".join(str(c) for c in xid["codes"]) or f"none ({xid.get('source') or 'no log'})")
    diag = result.get("diag")
    table.add_row("dcgmi diag", "not installed" if diag is None and result["level"] >= 2 else
                  "-" if diag is None else ("passed" if diag.get("passed") else "FAILED"))
    for key, value in result["figures"].items():
        table.add_row(FIGURE_LABELS.get(key, key), f"{value:g}")
    console.print(table)
    for problem in result["problems"]:
        console.print(Text(problem, style="red"))
