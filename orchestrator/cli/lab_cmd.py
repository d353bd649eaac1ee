"""`upgrade lab ...`: bring the simulated GPU fleet up and down, look at it, reboot hosts, inject faults."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.table import Table

from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, print_json
from orchestrator.lab import slurm
from orchestrator.lab.faults import Fault
from orchestrator.lab.lab import DEFAULT_INVENTORY, Lab

lab_app = typer.Typer(help="The lab fleet: simulated GPU hosts reachable over SSH, with a real Slurm cluster.",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")


def _print_up(lab: Lab, elapsed: float) -> None:
    st = lab.state()
    assert st is not None
    console.print(f"lab up: {len(st.hosts)} hosts in {elapsed:.1f} s "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in st.timings.items()))
    console.print(f"inventory: {st.inventory}")
    console.print(f"slurm: SLURM_CONF={slurm.conf_path(lab.paths)} sinfo")
    console.print(f"ssh: {' '.join(lab.ssh_command(st.hosts[0].name))}")


@lab_app.command("up")
def up(
    hosts: int = typer.Option(6, "--hosts", "-n", min=1, help="How many hosts (default 6)."),
    inventory: Path = typer.Option(DEFAULT_INVENTORY, "--inventory", help="Where to write the inventory."),
    no_slurm: bool = typer.Option(False, "--no-slurm", help="Skip the Slurm cluster."),
    rpm_hosts: int = typer.Option(1, "--rpm-hosts", min=0, help="Add N RPM-family hosts (rpm + dnf, Rocky 9); "
                                  "0: a .deb-only fleet."),
) -> None:
    """Start N hosts (namespaces + sshd on 127.0.0.11...), the lab repo and Slurm; write the inventory."""
    t0 = time.monotonic()
    lab = Lab()
    lab.up(hosts, inventory, with_slurm=not no_slurm, rpm=rpm_hosts)
    _print_up(lab, time.monotonic() - t0)


@lab_app.command("down")
def down() -> None:
    """Stop every lab process and unmount the lab's run folder (caches stay)."""
    took = Lab().down()
    console.print(f"lab down in {took['down']:.1f} s")


@lab_app.command("status")
def status(output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output")) -> None:
    """Each host: running, SSH, boot id, Slurm state, active faults. Exit 1 when not fully up."""
    rows = Lab().status()
    if output == OutputFormat.JSON:
        print_json([r.model_dump(mode="json") for r in rows])
    elif not rows:
        console.print("lab is down")
    else:
        table = Table(title="lab", title_justify="left")
        for col in ("host", "address", "GPUs", "running", "ssh", "boot id", "slurm", "faults"):
            table.add_column(col, no_wrap=True)
        for r in rows:
            table.add_row(r.name, f"{r.address}:{r.port}", r.gpu, "yes" if r.running else "NO",
                          "yes" if r.ssh else "NO", (r.boot_id or "-")[:8], r.slurm_state or "-",
                          ", ".join(sorted(r.faults)) or "-")
        console.print(table)
    healthy = bool(rows) and all(r.running and r.ssh for r in rows)
    raise typer.Exit(int(Exit.OK if healthy else Exit.WARNINGS))


@lab_app.command("reboot")
def reboot(host: str) -> None:
    """Reboot one host the way `shutdown -r` inside it would."""
    Lab().reboot(host)
    console.print(f"{host}: rebooting")


@lab_app.command("fault")
def fault(
    host: str,
    kind: Fault,
    seconds: float = typer.Option(10.0, "--seconds", help="ssh-down: how long; blocking-job: job length."),
    packages: list[str] = typer.Option(["*"], "--package", help="install-fails: package name patterns."),
    factor: float = typer.Option(0.4, "--factor", help="gpu-slow: fraction of normal bandwidth and clocks."),
    gpu: int = typer.Option(0, "--gpu", help="dcgm-diag-fails: which GPU fails."),
) -> None:
    """Inject a fault into one host."""
    recorded = Lab().inject(host, kind, seconds=seconds, packages=tuple(packages), factor=factor, gpu=gpu)
    console.print(f"{host}: {kind} injected ({recorded})")


@lab_app.command("clear")
def clear(host: str, kind: Fault | None = typer.Argument(None, help="One fault; all when left out.")) -> None:
    """Clear one fault (or all) on a host; a host hung in reboot comes back."""
    Lab().clear(host, kind)
    console.print(f"{host}: {kind or 'all faults'} cleared")


@lab_app.command("demo")
def demo(hosts: int = typer.Option(6, "--hosts", "-n", min=1),
         rpm_hosts: int = typer.Option(1, "--rpm-hosts", min=0, help="RPM-family hosts beside the .deb ones."),
         keep: bool = typer.Option(False, "--keep", help="Leave the lab up afterwards to explore it.")) -> None:
    """Bring the lab up if needed, show its facts, plan its upgrade (plans/lab.yaml), apply the canary wave
    (one host per pool: apt and dnf hosts alike), roll the RPM host back.

    The lab goes down at the end (a lab it found up stays up), so the tests can bring up their own; --keep
    leaves it up.
    """
    lab = Lab()
    started = not lab.is_up()
    if started:
        t0 = time.monotonic()
        lab.up(hosts, DEFAULT_INVENTORY, rpm=rpm_hosts)
        _print_up(lab, time.monotonic() - t0)
    try:
        codes, plan_path, journal = _demo_steps(lab)
        if keep or not started:
            console.print(f"\nNext: `upgrade apply {plan_path} --wave next --yes --ignore-window --state-dir "
                          f"{journal}`, `upgrade status --state-dir {journal}`, `upgrade report --state-dir "
                          f"{journal}`, `upgrade lab fault HOST KIND` before a wave, "
                          f"`SLURM_CONF={slurm.conf_path(lab.paths)} sinfo`, `upgrade lab down`.")
    finally:
        if started and not keep:
            console.print("\n$ upgrade lab down   (`upgrade lab demo --keep` leaves it up to explore)")
            lab.down()
    # facts and check exit 1 on warnings (the lab starts on an end-of-life branch); plan, apply and the
    # rollback decide
    decisive = [code for command, code in codes if command in ("plan", "apply", "rollback")]
    raise typer.Exit(max(decisive) if decisive else 2)


def _demo_steps(lab: Lab) -> tuple[list[tuple[str, int]], Path, Path]:
    """facts, check, plan, apply the canary wave, status, report: each as a user would type it."""
    st = lab.state()
    assert st is not None
    inventory = st.inventory or str(DEFAULT_INVENTORY / "hosts.yml")
    desired = Path(__file__).resolve().parents[2] / "plans" / "lab.yaml"
    plan_path = desired.with_name("lab.plan.json")
    journal = lab.paths.run / "upgrade"  # the lab's run folder: a new lab starts with a new journal
    report = lab.paths.state / "demo-report"  # outside the run tmpfs: it stays when the lab goes down
    rpm = [h.name for h in st.hosts if h.family == "rpm"]  # its canary upgrade is rolled back: dnf both ways
    steps = [["facts", "-i", inventory],
             ["check", "-i", inventory, str(desired)],
             ["plan", "-i", inventory, str(desired), "-o", str(plan_path)],
             ["apply", str(plan_path), "--wave", "canary", "--yes", "--ignore-window", "--state-dir", str(journal)],
             *([["rollback", str(plan_path), "--host", rpm[0], "--yes", "--state-dir", str(journal)]] if rpm else []),
             ["status", "--state-dir", str(journal)],
             ["report", "--state-dir", str(journal), "-o", str(report)]]
    codes = []
    for args in steps:
        console.print(f"\n$ upgrade {' '.join(args)}")
        codes.append((args[0], subprocess.run([sys.executable, "-m", "orchestrator", *args], check=False).returncode))
        if args[0] == "plan" and codes[-1][1] != 0:
            break
    return codes, plan_path, journal
