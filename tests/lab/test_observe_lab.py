"""Watching a real rollout on the lab: webhooks to a receiver on 127.0.0.1, the metrics endpoint scraped and the
textfile written, `status --watch` from another process, then `upgrade report` of what happened."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.lab.faults import Fault
from tests.executor.test_apply_lab import DRIVER_ONLY, FAST, canary_host, make_plan
from tests.observe.test_notify import Receiver
from tests.support.lab import LabHandle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_canary_wave_is_notified_measured_watched_and_reported(fresh: LabHandle, tmp_path: Path) -> None:
    plan_path, plan = make_plan(fresh, tmp_path, DRIVER_ONLY)
    victim = canary_host(plan, "training")
    fresh.lab.inject(victim, Fault.INSTALL_FAILS, packages=("nvidia-driver-580-open",))
    receiver = Receiver()
    state = tmp_path / "state"
    prom = tmp_path / "gpu_upgrade.prom"
    scraped: list[str] = []
    try:
        run = subprocess.Popen([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "canary",
                                "--yes", "--output", "json", "--ignore-window", "--state-dir", str(state), *FAST,
                                "--notify", receiver.url, "--metrics-port", "0", "--metrics-addr", "127.0.0.1",
                                "--metrics-file", str(prom)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        assert run.stderr is not None
        first = run.stderr.readline()
        port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", first)
        assert port, first
        deadline = time.monotonic() + 300
        while not scraped and time.monotonic() < deadline:  # until the run has started (and has an id)
            with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10) as answer:
                text = answer.read().decode()
            if any(n == "gpu_upgrade_run_info" and dict(labels)["run"] for n, labels in samples(text)):
                scraped.append(text)
            time.sleep(0.2)
        watch = subprocess.run([sys.executable, "-m", "orchestrator", "status", "--watch", "--interval", "0.5",
                                "--state-dir", str(state)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                               check=False, stdin=subprocess.DEVNULL)
        _out, err = run.communicate(timeout=900)
    finally:
        receiver.stop()
    assert run.returncode == 1, first + err  # rolled back within the budget
    # the endpoint answered while the run went (scraped above); the textfile holds its end
    assert scraped
    end = samples(prom.read_text())
    pool = next(plan["classes"][row[2]]["pool"] for row in plan["rows"] if row[0] == victim)
    assert end[("gpu_upgrade_hosts", frozenset({"state": "rolled_back", "pool": pool, "wave": "canary"}.items()))] == 1
    assert end[("gpu_upgrade_host_rollbacks_total",
                frozenset({"pool": pool, "wave": "canary", "outcome": "rolled_back"}.items()))] == 1
    assert sum(v for (n, _), v in end.items() if n == "gpu_upgrade_step_duration_seconds_count") > 10
    # the receiver heard the rollback, the wave and the end, in that order
    events = [(b["event"], b["host"]) for b in receiver.bodies]
    assert events.index(("host_rolled_back", victim)) < events.index(("wave_passed", None)) < \
        events.index(("run_done", None))
    # the watcher followed the run to its end from its own process
    assert watch.returncode == 0 and "wave canary: passed" in watch.stderr and \
        watch.stderr.rstrip().endswith("run finished: rolled_back")
    # and the report tells it: a bar per step, the failure with its reason
    report = subprocess.run([sys.executable, "-m", "orchestrator", "report", "--state-dir", str(state), "-o",
                             str(tmp_path / "report")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert report.returncode == 0, report.stderr
    page = next((tmp_path / "report").glob("*.html")).read_text()
    assert page.count("data-step=") > 10 and f"<td>{victim}</td><td>canary</td>" in page
    assert "nvidia-driver-580-open" in page
