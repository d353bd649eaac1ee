"""Webhook notifications against real HTTP servers on 127.0.0.1: what is posted, retries, a dead receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.journal import Journal
from orchestrator.adapters.notify import Notifier, NotifyError, resolve_target
from orchestrator.app.execute import Driver
from orchestrator.planner.model import StepKind
from orchestrator.run.decide import RunContext
from tests.run.test_decide import make_plan
from tests.support.fake_hosts import FakeHosts, fail_step


class Receiver:
    """A webhook receiver: answers ``codes`` in turn (then 200) and keeps every JSON body it got."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.codes = list(codes or [])
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                owner.attempts += 1
                code = owner.codes.pop(0) if owner.codes else 200
                if code == 200:
                    assert self.headers.get("Content-Type") == "application/json"
                    owner.bodies.append(body)
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/B000/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


def run_with(notifier: Notifier, tmp_path: Path, fail: Any = lambda h, s: None, **policy: object) -> str:
    plan = make_plan(**policy)
    with Journal(tmp_path / "journal.db") as journal:
        run_id = journal.start_run(plan.plan_hash, "plan.json")
        state = Driver(RunContext(plan, plan.waves), journal, run_id, FakeHosts(plan, fail=fail),
                       sleep=lambda s: None, observers=[notifier]).run()
    notifier.close(timeout_s=30)
    return state.status


def test_milestones_are_posted_in_a_shape_slack_and_generic_receivers_take(tmp_path: Path,
                                                                           receivers: list[Receiver]) -> None:
    flaky, steady = Receiver(codes=[500, 503]), Receiver()
    receivers += [flaky, steady]
    notifier = Notifier([flaky.url, steady.url], backoff_s=0.01)
    # h2 fails its driver change with a message full of what Slack would parse as markup
    status = run_with(notifier, tmp_path, fail=fail_step("h2", StepKind.CHANGE, "E: <!channel> & <b>dpkg</b>"),
                      failure_budget={"per_wave": 1, "total": 1})
    assert status == "rolled_back" and notifier.failures == []
    events = [b["event"] for b in steady.bodies]
    assert events == ["wave_passed", "wave_passed", "host_rolled_back", "wave_passed", "run_done"]
    assert flaky.bodies == steady.bodies and flaky.attempts == len(events) + 2  # two 5xx answers retried
    rolled = steady.bodies[2]
    assert rolled["host"] == "h2" and rolled["wave"] == "wave-2" and rolled["pool"] == "train"
    assert "<!channel>" in rolled["reason"]  # the structured field keeps the text as it was
    assert "&lt;!channel&gt; &amp; &lt;b&gt;dpkg&lt;/b&gt;" in rolled["text"] and "<" not in rolled["text"]
    done = steady.bodies[-1]
    assert done["status"] == "rolled_back" and done["text"].endswith("run done with rollbacks")
    assert all(isinstance(b["text"], str) and b["run"] and b["at"] for b in steady.bodies)


def test_a_halted_run_and_a_quarantined_host_are_posted(tmp_path: Path, receivers: list[Receiver]) -> None:
    steady = Receiver()
    receivers.append(steady)

    def fail(host: str, step: Any) -> str | None:  # h1's driver fails and so does its way back
        return "dpkg broke" if host == "h1" and step.kind == StepKind.CHANGE else None

    status = run_with(Notifier([steady.url], backoff_s=0.01), tmp_path, fail=fail,
                      failure_budget={"per_wave": 0})
    assert status == "halted"
    events = [b["event"] for b in steady.bodies]
    assert events == ["host_quarantined", "run_halted"]
    assert steady.bodies[0]["host"] == "h1" and "left drained" in steady.bodies[0]["text"]


def test_a_dead_receiver_never_stops_the_rollout(tmp_path: Path, receivers: list[Receiver]) -> None:
    dead, refusing, steady = Receiver(codes=[500] * 100), Receiver(codes=[404] * 100), Receiver()
    receivers += [dead, refusing, steady]
    dead_port = dead.server.server_port
    notifier = Notifier([dead.url, refusing.url, steady.url], attempts=3, backoff_s=0.01)
    assert run_with(notifier, tmp_path) == "done"
    assert [b["event"] for b in steady.bodies][-1] == "run_done"
    assert dead.attempts == 3 * len(steady.bodies)  # every retry, then given up
    assert refusing.attempts == len(steady.bodies)  # a 4xx is not retried
    assert len(notifier.failures) == 2 * len(steady.bodies)
    assert notifier.failures[-2:] == [f"run_done to 127.0.0.1:{dead_port}: HTTP 500",
                                      f"run_done to 127.0.0.1:{refusing.server.server_port}: HTTP 404 Not Found"]
    assert not any("secret" in f for f in notifier.failures)  # a webhook's path is its secret


def test_targets_are_urls_or_named_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_HOOK", "https://hooks.example.invalid/services/x")
    assert resolve_target("env:SLACK_HOOK") == "https://hooks.example.invalid/services/x"
    with pytest.raises(NotifyError, match="environment variable NOPE is not set"):
        resolve_target("env:NOPE")
    with pytest.raises(NotifyError, match="'file:///etc/passwd': expected an http:// or https:// URL"):
        resolve_target("file:///etc/passwd")
