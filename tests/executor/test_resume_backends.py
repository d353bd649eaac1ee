"""kill -9 in the middle of a wave, then resume from another process, on both state backends.

The apply use case runs in a child process against a fleet kept in files (tests/support/filefleet.py); the
child is killed with -9 once some steps are journaled; this process (a replaced CI runner) resumes the same
plan from the same state (a folder, or a database on a real PostgreSQL server) and finishes the wave.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.adapters.state import StateStore, state_store
from orchestrator.app.apply import apply
from orchestrator.planner import load_plan
from tests.support.example_plan import FACTS, NOW, write_example_plan
from tests.support.filefleet import FileFleet
from tests.support.postgres import Postgres, fresh_database

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import sys
    from datetime import datetime
    from pathlib import Path
    from orchestrator.app.apply import apply
    from orchestrator.planner import load_plan
    from tests.support.filefleet import FileFleet
    plan_path, state, fleet_dir, facts, now = sys.argv[1:6]
    plan = load_plan(plan_path)
    apply(plan, Path(plan_path), "canary", facts=Path(facts), state=state, now=datetime.fromisoformat(now),
          ignore_window=True, actions=FileFleet(plan, Path(fleet_dir), step_s=0.15), sleep=lambda s: None)
    print("finished", flush=True)
""")


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_plan(tmp_path_factory.mktemp("plan") / "example.plan.json")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "sqlite":
        return state_store(tmp_path / "state")
    server: Postgres = request.getfixturevalue("postgres")
    return state_store(fresh_database(server))


def _steps_done(store: StateStore) -> list[tuple[str, str]]:
    if not store.exists():
        return []
    with store.journal() as journal:
        run = journal.latest_run()
        if run is None:
            return []
        return [(e.host or "", e.step or "") for e in journal.events(run.id)
                if e.kind == "step_end" and e.status == "successful"]


def test_a_killed_apply_is_resumed_by_another_process(plan_path: Path, store: StateStore, tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(plan_path), store.spec, str(fleet_dir), str(FACTS),
                              NOW.isoformat()], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_steps_done(store)) < 6:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child journaled no steps"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    before = _steps_done(store)
    plan = load_plan(plan_path)
    canary = plan.waves[0]
    assert len(before) < sum(len(plan.host(h).steps) for h in canary.hosts)  # killed mid-wave
    fleet = FileFleet(plan, fleet_dir)
    ran_before = len(fleet.ran())
    result = apply(plan, plan_path, "canary", facts=FACTS, state=store.spec, now=NOW, ignore_window=True,
                   actions=fleet, sleep=lambda s: None)
    assert result.resumed and result.report.status == "done", result.report
    assert {result.hosts[h][1] for h in canary.hosts} == {"done"}
    again = set(fleet.ran()[ran_before:])
    # a step runs again only if the kill fell between its report and the decision on it: at most the last
    # step each host finished before the kill; everything earlier is not repeated
    last = {host: step for host, step in before}
    assert set(before) & again <= set(last.items())
    assert len(set(before) - again) >= len(before) - len(last)
    for host in canary.hosts:
        assert fleet.stack(host) == (plan.host(host).target or plan.host(host).current).model_dump(mode="json")
    with store.journal() as journal:
        assert [e.kind for e in journal.events(result.run_id)].count("run_resumed") == 1
        assert len(journal.runs()) == 1  # the same run, continued
    status = subprocess.run([sys.executable, "-m", "orchestrator", "status", "--state", store.spec], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stderr
    assert result.run_id in status.stdout and all(h in status.stdout for h in canary.hosts)
