"""Progress for people: the live table during a run, `upgrade status --watch` from another shell, facts' bar."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from rich.console import Console

from orchestrator.adapters.facts import collect_live
from orchestrator.adapters.inventory import load_inventory
from orchestrator.adapters.journal import Journal
from orchestrator.app.execute import Driver
from orchestrator.app.view import RunView, from_journal
from orchestrator.cli.progress import LiveTable, render_view
from orchestrator.planner.model import Step, StepKind
from orchestrator.run.decide import RunContext
from tests.run.test_decide import make_plan
from tests.support.fake_hosts import FakeHosts, fail_step

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def text_of(renderable: object, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_wave_table_shows_states_steps_times_slots_and_budget() -> None:
    plan = make_plan(failure_budget={"per_wave": 1, "total": 1})
    view = RunView.for_plan(plan, plan.waves, run_id="run-1")
    view.moved("h1", "canary", "done", "", T0)
    view.wave_ended("canary", "passed", "")
    view.moved("h2", "wave-2", "cordoned", "", T0)
    view.step_started("h2", "03-driver", "upgrade", T0 + timedelta(seconds=5))
    view.moved("h4", "wave-2", "failed", "E: dpkg was interrupted", T0)
    view.moved("h4", "wave-2", "rolled_back", "E: dpkg was interrupted", T0 + timedelta(seconds=30))
    shown = text_of(render_view(view, T0 + timedelta(minutes=2, seconds=5)))
    assert "wave canary: passed  1 hosts, failed 0 of 1 allowed" in shown
    assert "wave wave-2: running  2 hosts, slots in use 1 of 2, failed 1 of 1 allowed" in shown
    row = next(line for line in shown.splitlines() if "h2" in line)
    assert "cordoned" in row and "03-driver (upgrade)" in row and "2:00" in row and "2:05" in row
    row = next(line for line in shown.splitlines() if "h4" in line)
    assert "rolled_back" in row and "0:30" in row and "E: dpkg was interrupted" in row
    # the busy host is listed before the one that finished
    assert shown.index("h2") < shown.index("h4")


def test_host_text_is_shown_as_data_never_as_markup() -> None:
    plan = make_plan()
    view = RunView.for_plan(plan, plan.waves)
    view.moved("h1", "canary", "failed", "[bold red]E:[/] [link=file:///x]dpkg[/link]", T0)
    view.step_started("h1", "[b]02-drain[/b]", "upgrade", T0)
    shown = text_of(render_view(view, T0))
    assert "[bold red]E:[/] [link=file:///x]dpkg[/link]" in shown and "[b]02-drain[/b] (upgrade)" in shown


def test_the_live_table_follows_a_run_and_lists_more_hosts_than_fit_as_counts(tmp_path: Path) -> None:
    plan = make_plan(failure_budget={"per_wave": 1, "total": 1})
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=True, color_system=None)
    with Journal(tmp_path / "journal.db") as journal, LiveTable(console) as live:
        run_id = journal.start_run(plan.plan_hash, "plan.json")
        Driver(RunContext(plan, plan.waves), journal, run_id, FakeHosts(plan, fail=fail_step("h2", StepKind.CHANGE)),
               sleep=lambda s: None, observers=[live]).run()
        events = journal.events(run_id)
    final = text_of(render_view(live.view, datetime.now(UTC)))
    assert f"run {run_id}: rolled_back" in final and "wave wave-2: running" not in final
    assert "wave wave-2: passed" in final  # the last wave's table
    # the view folded from the driver equals the view folded from the journal
    again = from_journal(events, plan, run_id)
    assert {h: (v.state, [s.step for s in v.steps]) for h, v in again.hosts.items()} == \
        {h: (v.state, [s.step for s in v.steps]) for h, v in live.view.hosts.items()}
    assert "rolled_back" in out.getvalue()


def test_status_watch_follows_a_run_from_another_process_until_it_ends(tmp_path: Path) -> None:
    plan = make_plan()
    state_dir = tmp_path / "state"
    go = threading.Event()

    def slow(host: str, step: Step) -> None:
        go.wait(30)
        time.sleep(0.02)

    with Journal(state_dir / "journal.db") as journal:
        run_id = journal.start_run(plan.plan_hash, str(tmp_path / "missing.plan.json"))
        journal.record(run_id, "run_waves", data={"waves": [w.name for w in plan.waves]})
        watcher = subprocess.Popen([sys.executable, "-m", "orchestrator", "status", "--watch", "--interval", "0.2",
                                    "--state-dir", str(state_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            assert watcher.poll() is None  # the run is still going: it keeps watching
            go.set()
            state = Driver(RunContext(plan, plan.waves), journal, run_id, FakeHosts(plan, during=slow),
                           sleep=lambda s: None).run()
            journal.finish_run(run_id, state.status, {})
            out, err = watcher.communicate(timeout=60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    assert watcher.returncode == 0, err
    lines = err.splitlines()
    assert lines.index(next(x for x in lines if x.startswith("wave canary: passed"))) < \
        lines.index(next(x for x in lines if x.startswith("wave wave-2: passed")))
    assert any(x.startswith("h3") and "13-uncordon  started" in x for x in lines)
    assert lines[-1] == "run finished: done"
    assert "Traceback" not in err and f"run {run_id} (done" in out  # then the final table, as plain status


def test_facts_tells_each_host_as_it_finishes(tmp_path: Path) -> None:
    """Real ansible-runner events: this machine over the local connection, and a port where nobody listens."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        "here": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "gone": {"ansible_host": "127.0.0.9", "ansible_port": 9, "ansible_user": "nobody"},
    }, "vars": {"upgrade_pool": "p", "upgrade_model": "H100", "upgrade_gpu_count": 8}}}))
    told: list[tuple[str, str]] = []
    snap = collect_live(inventory, load_inventory(inventory), on_host=lambda h, o: told.append((h, o)))
    assert sorted(told) == [("gone", "unreachable"), ("here", "ok")]
    assert [u.host for u in snap.unreachable] == ["gone"] and [h.host for h in snap.hosts] == ["here"]


def test_facts_on_a_terminal_draws_a_bar_that_counts_hosts_in(tmp_path: Path) -> None:
    """`upgrade facts` on a pseudo-terminal: the bar counts each host in and names the ones that did not answer."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        "here": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "gone": {"ansible_host": "127.0.0.9", "ansible_port": 9, "ansible_user": "nobody"},
    }, "vars": {"upgrade_pool": "p", "upgrade_model": "H100", "upgrade_gpu_count": 8}}}))
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "facts", "-i", str(inventory)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(controller)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", seen.decode(errors="replace"))
    assert proc.returncode == 1  # one host unreachable
    assert re.search(r"facts .* 1/2 ", text) and re.search(r"facts .* 2/2 .*gone unreachable", text)
