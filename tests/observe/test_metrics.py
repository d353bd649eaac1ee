"""Prometheus metrics of a run: scraped over HTTP from the endpoint while a host is mid-step, and the textfile."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.adapters.journal import Journal
from orchestrator.adapters.metrics import MetricsError, RunMetrics
from orchestrator.app.execute import Driver
from orchestrator.planner.model import Step, StepKind
from orchestrator.run.decide import RunContext
from tests.run.test_decide import make_plan
from tests.support.fake_hosts import FakeHosts, fail_step


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def test_the_endpoint_shows_the_run_while_it_goes_and_the_textfile_its_end(tmp_path: Path) -> None:
    plan = make_plan()
    metrics = RunMetrics(textfile=tmp_path / "gpu_upgrade.prom")
    port = metrics.serve(0, "127.0.0.1")
    seen: list[str] = []

    def during(host: str, step: Step) -> None:
        if host == "h3" and step.kind == StepKind.GATE:  # wave-1's host is at its gate: look from outside
            seen.append(scrape(port))

    fake = FakeHosts(plan, fail=fail_step("h2", StepKind.CHANGE), figure=lambda h: {"h1": 51.5}.get(h, 50.0),
                     during=during)
    with Journal(tmp_path / "journal.db") as journal:
        run_id = journal.start_run(plan.plan_hash, "plan.json")
        ctx = RunContext(plan, plan.waves, {"h1": 52.0})
        try:
            state = Driver(ctx, journal, run_id, fake, sleep=lambda s: None, observers=[metrics]).run()
            final = samples(scrape(port))
        finally:
            metrics.close()
    assert len(seen) == 1
    mid = samples(seen[0])
    assert value(mid, "gpu_upgrade_hosts", state="done", pool="train", wave="canary") == 1
    assert value(mid, "gpu_upgrade_hosts", state="verifying", pool="train", wave="wave-1") == 1
    assert value(mid, "gpu_upgrade_hosts", state="pending", pool="train", wave="wave-2") == 2
    assert value(mid, "gpu_upgrade_run_wave_index") == 2 and value(mid, "gpu_upgrade_run_waves") == 3
    assert value(mid, "gpu_upgrade_wave_passed", wave="canary") == 1
    assert value(mid, "gpu_upgrade_wave_passed", wave="wave-1") == 0
    assert value(mid, "gpu_upgrade_wave_slots_in_use", wave="wave-1") == 1
    assert value(mid, "gpu_upgrade_wave_slots_limit", wave="wave-1") == 2
    assert value(mid, "gpu_upgrade_gate_figure", host="h1", pool="train", wave="canary", metric="pcie_h2d_gbps") \
        == 51.5
    assert value(mid, "gpu_upgrade_gate_baseline", host="h1", metric="pcie_h2d_gbps") == 52.0

    # h2 failed its driver change and was rolled back: one failure, one rollback, counted where they happened
    assert state.hosts["h2"].state.value == "rolled_back"
    assert value(final, "gpu_upgrade_host_failures_total", pool="train", wave="wave-2") == 1
    assert value(final, "gpu_upgrade_host_rollbacks_total", pool="train", wave="wave-2", outcome="rolled_back") == 1
    assert value(final, "gpu_upgrade_wave_failed_hosts", wave="wave-2") == 1
    assert value(final, "gpu_upgrade_wave_failure_budget_hosts", wave="wave-2") == plan.waves[2].failure_budget
    steps_counted = sum(v for (name, _), v in final.items() if name == "gpu_upgrade_step_duration_seconds_count")
    assert steps_counted == len(fake.ran)
    failed_steps = value(final, "gpu_upgrade_step_duration_seconds_count", kind="change", phase="upgrade",
                         result="failed")
    assert failed_steps == 1
    info = [labels for (name, labels), v in final.items() if name == "gpu_upgrade_run_info"]
    assert dict(info[0])["status"] == state.status and dict(info[0])["run"] == run_id

    # the textfile holds the run's end in the exposition format node-exporter reads
    written = samples((tmp_path / "gpu_upgrade.prom").read_text())
    assert value(written, "gpu_upgrade_hosts", state="done", pool="train", wave="wave-2") == 1
    assert value(written, "gpu_upgrade_host_failures_total", pool="train", wave="wave-2") == 1


def test_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(MetricsError, match=f"--metrics-port {taken}: cannot listen on 127.0.0.1:{taken}"):
            RunMetrics().serve(taken, "127.0.0.1")


def test_a_textfile_in_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    metrics = RunMetrics(textfile=tmp_path / "nope" / "gpu_upgrade.prom")
    with pytest.raises(MetricsError, match=r"nope/gpu_upgrade\.prom: cannot write the metrics textfile"):
        metrics.write()
