"""Prometheus metrics of a run, as an observer of the driver: served over HTTP and written as a textfile.

Gauges are read from the run's view at scrape time (hosts per state, pool and wave; each wave's slots and
failures against its budget; gate figures and baselines per host; the run's current wave); step durations
are a histogram and failures and rollbacks counters, fed as they happen. ``--metrics-port`` serves them during
apply; ``--metrics-file`` writes node-exporter's textfile format (atomically) after every wave and at the end,
for runs in CI. Every metric starts with ``gpu_upgrade_``; units are in names (``_seconds``), counters end in
``_total``.

Example::

    metrics = RunMetrics(textfile=Path("/var/lib/node_exporter/textfile/gpu_upgrade.prom"))
    metrics.serve(9464)
    apply(..., observers=[metrics])
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.app.view import RunView, observe_action, observe_result, observe_start
from orchestrator.errors import UpgradeError
from orchestrator.ports import StepOutcome
from orchestrator.run.decide import METRIC, Action, Finished, HostMoved, RunContext, RunState, RunStep, WaveEnded
from orchestrator.run.states import HostState

PREFIX = "gpu_upgrade"
# a step takes seconds (precheck) to most of an hour (a driver install with a reboot and DCGM level 3)
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class MetricsError(UpgradeError):
    """The metrics endpoint or textfile cannot be set up (port taken, folder missing)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where, self.problem = where, problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


class _ViewCollector(Collector):
    """Gauges computed from the view at every scrape, so they never drift from what the run knows."""

    def __init__(self, owner: RunMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        with self.owner.lock:
            yield from _gauges(self.owner.view, self.owner.plan_hash, self.owner.baselines, self.owner.wave_order)


def _gauges(view: RunView, plan_hash: str, baselines: dict[str, float], order: list[str]) -> Iterator[Metric]:
    hosts = GaugeMetricFamily(f"{PREFIX}_hosts", "Hosts of the run per state, pool and wave.",
                              labels=["state", "pool", "wave"])
    counts: dict[tuple[str, str, str], int] = {}
    for h in view.hosts.values():
        counts[(h.state, h.pool, h.wave)] = counts.get((h.state, h.pool, h.wave), 0) + 1
    for wave in view.waves.values():  # every state present for every wave and pool, zeros included
        for pool in sorted({view.hosts[h].pool for h in wave.hosts if h in view.hosts}):
            for state in HostState:
                counts.setdefault((state.value, pool, wave.name), 0)
    for (state_name, pool, wave_name), n in sorted(counts.items()):
        hosts.add_metric([state_name, pool, wave_name], n)
    yield hosts
    budget = GaugeMetricFamily(f"{PREFIX}_wave_failure_budget_hosts", "Hosts a wave may lose before the run halts.",
                               labels=["wave"])
    failed = GaugeMetricFamily(f"{PREFIX}_wave_failed_hosts", "Hosts of a wave rolled back or quarantined.",
                               labels=["wave"])
    in_use = GaugeMetricFamily(f"{PREFIX}_wave_slots_in_use", "Hosts out of service now in the wave's pools.",
                               labels=["wave"])
    limit = GaugeMetricFamily(f"{PREFIX}_wave_slots_limit", "Hosts the wave's pools may have out of service.",
                              labels=["wave"])
    passed = GaugeMetricFamily(f"{PREFIX}_wave_passed", "1 once the wave passed its gates, else 0.", labels=["wave"])
    for wave in view.waves.values():
        budget.add_metric([wave.name], wave.failure_budget)
        failed.add_metric([wave.name], view.failures(wave.name))
        in_use.add_metric([wave.name], view.in_use(wave.name))
        limit.add_metric([wave.name], wave.slot_limit)
        passed.add_metric([wave.name], 1 if wave.status == "passed" else 0)
    yield from (budget, failed, in_use, limit, passed)
    current = view.current_wave()
    index = GaugeMetricFamily(f"{PREFIX}_run_wave_index", "Position (1-based) of the wave running now; 0 before.")
    index.add_metric([], order.index(current) + 1 if current in order else 0)
    yield index
    waves = GaugeMetricFamily(f"{PREFIX}_run_waves", "Waves this run goes through.")
    waves.add_metric([], len(order))
    yield waves
    info = GaugeMetricFamily(f"{PREFIX}_run_info", "The run: id, plan hash, status and current wave (value 1).",
                             labels=["run", "plan_hash", "status", "wave"])
    info.add_metric([view.run_id, plan_hash[:12], view.status, current or ""], 1)
    yield info
    figure = GaugeMetricFamily(f"{PREFIX}_gate_figure", "A host's health figure measured by its gates.",
                               labels=["host", "pool", "wave", "metric"])
    base = GaugeMetricFamily(f"{PREFIX}_gate_baseline", "A host's baseline of a health figure from earlier runs.",
                             labels=["host", "metric"])
    for h in sorted(view.hosts.values(), key=lambda h: h.name):
        for metric, value in sorted(h.figures.items()):
            figure.add_metric([h.name, h.pool, h.wave, metric], value)
    for host, value in sorted(baselines.items()):
        if host in view.hosts:
            base.add_metric([host, METRIC], value)
    yield from (figure, base)
    if view.last is not None:
        last = GaugeMetricFamily(f"{PREFIX}_last_event_timestamp_seconds", "When the run last reported anything.")
        last.add_metric([], view.last.timestamp())
        yield last


class RunMetrics:
    """A run observer that keeps Prometheus metrics; ``serve`` and ``textfile`` are the two ways out."""

    def __init__(self, textfile: Path | None = None) -> None:
        self.lock = threading.Lock()
        self.view = RunView()
        self.plan_hash = ""
        self.baselines: dict[str, float] = {}
        self.wave_order: list[str] = []
        self.textfile = textfile
        self.registry = CollectorRegistry()
        self.steps = Histogram(f"{PREFIX}_step_duration_seconds", "How long a step took on a host.",
                               ["kind", "phase", "result"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.failures = Counter(f"{PREFIX}_host_failures_total", "Hosts that failed a step or a gate.",
                                ["pool", "wave"], registry=self.registry)
        self.rollbacks = Counter(f"{PREFIX}_host_rollbacks_total", "Rollbacks that ended, by how they ended.",
                                 ["pool", "wave", "outcome"], registry=self.registry)
        self.registry.register(_ViewCollector(self))
        self._started: dict[tuple[str, str], datetime] = {}
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- ways out

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``addr:port`` in a thread until :meth:`close`; the port (0 picks a free one)."""
        try:
            self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"--metrics-port {port}", f"cannot listen on {addr}:{port} ({exc.strerror})") from None
        return int(self._server.server_port)

    def write(self) -> None:
        """Write the textfile for node-exporter's textfile collector (temp file + rename: never half written)."""
        if self.textfile is None:
            return
        try:
            write_to_textfile(str(self.textfile), self.registry)
        except OSError as exc:
            raise MetricsError(str(self.textfile), f"cannot write the metrics textfile ({exc.strerror})") from None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---------------------------------------------------------------- the observer

    def on_start(self, ctx: RunContext, run_id: str, state: RunState) -> None:
        with self.lock:
            self.view = RunView.for_plan(ctx.plan, ctx.waves, ctx.parallel, run_id)
            observe_start(self.view, ctx, run_id, state)
            self.plan_hash = ctx.plan.plan_hash
            self.baselines = dict(ctx.baselines)
            self.wave_order = [w.name for w in ctx.waves]
        self.write()

    def on_action(self, action: Action, at: datetime) -> None:
        with self.lock:
            observe_action(self.view, action, at)
            if isinstance(action, RunStep):
                self._started[(action.host, action.step.id)] = at
            if isinstance(action, HostMoved):
                host = self.view.hosts[action.host]
                if action.state == HostState.FAILED:
                    self.failures.labels(host.pool, host.wave).inc()
                elif action.state in (HostState.ROLLED_BACK, HostState.QUARANTINED):
                    self.rollbacks.labels(host.pool, host.wave, action.state.value).inc()
        if isinstance(action, WaveEnded | Finished):
            self.write()

    def on_result(self, action: RunStep, outcome: StepOutcome, at: datetime) -> None:
        with self.lock:
            observe_result(self.view, action, outcome, at)
            start = self._started.pop((action.host, action.step.id), None)
            if start is not None:
                self.steps.labels(action.step.kind.value, action.phase, "ok" if outcome.ok else "failed").observe(
                    max(0.0, (at - start).total_seconds()))
