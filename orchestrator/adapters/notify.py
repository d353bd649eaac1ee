"""Webhook notifications of a run, as an observer of the driver: wave passed, host rolled back or
quarantined, run halted, run done.

Each is one JSON POST that Slack's incoming webhooks and generic receivers both take: ``text`` (what Slack
shows; ``&``, ``<`` and ``>`` escaped as Slack's formatting reference asks,
https://api.slack.com/reference/surfaces/formatting#escaping, read 2026-12) plus the same facts as fields
(``event``, ``run``, ``plan``, ``wave``, ``host``, ``reason``, ``at``). Posts go out from a thread of their own,
with retries and exponential backoff (tenacity), so a slow or failing receiver never holds up or stops a
rollout: what could not be delivered is listed in ``failures``.

Example::

    notifier = Notifier(["https://hooks.slack.com/services/T000/B000/XXXX"])
    apply(..., observers=[notifier]); notifier.close(); print(notifier.failures)
"""

from __future__ import annotations

import json
import os
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from orchestrator.errors import UpgradeError
from orchestrator.ports import StepOutcome
from orchestrator.run.decide import Action, Finished, HostMoved, RunContext, RunState, RunStep, WaveEnded
from orchestrator.run.states import HostState

TIMEOUT_S = 10
USER_AGENT = "gpu-fleet-upgrade"


class NotifyError(UpgradeError, ValueError):
    """A notification target that is not an http(s) URL, or names an environment variable that is not set."""

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(target, problem)
        self.target, self.problem = target, problem

    def __str__(self) -> str:
        return f"notify target {self.target!r}: {self.problem}"


def resolve_target(spec: str) -> str:
    """An http(s) URL, or ``env:NAME`` for one kept in the environment (webhook URLs are secrets)."""
    url = spec
    if spec.startswith("env:"):
        url = os.environ.get(spec[4:], "")
        if not url:
            raise NotifyError(spec, f"environment variable {spec[4:]} is not set")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NotifyError(spec if spec.startswith("env:") else url, "expected an http:// or https:// URL")
    return url


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Retryable(Exception):
    """A delivery worth trying again: no connection, a timeout, 429 or a 5xx answer."""


def post_json(url: str, body: dict[str, Any]) -> None:
    """One POST; raises ``_Retryable`` for what a retry may fix, ``OSError`` for what it will not (4xx)."""
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # scheme checked by resolve_target
            answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code}") from None
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Retryable(str(reason)) from None


class Notifier:
    """A run observer that posts the run's milestones to every target; ``close`` waits for the queue."""

    def __init__(self, targets: Sequence[str], *, attempts: int = 4, backoff_s: float = 1.0,
                 post: Callable[[str, dict[str, Any]], None] = post_json) -> None:
        self.urls = [resolve_target(t) for t in dict.fromkeys(targets)]
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.post = post
        self.failures: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.run_id = ""
        self.plan_hash = ""
        self.pools: dict[str, str] = {}
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._deliver_all, name="notify", daemon=True)
        if self.urls:
            self._worker.start()

    # ---------------------------------------------------------------- the observer

    def on_start(self, ctx: RunContext, run_id: str, state: RunState) -> None:
        self.run_id, self.plan_hash = run_id, ctx.plan.plan_hash
        self.pools = {r.name: ctx.plan.classes[r.cls].pool for r in ctx.plan.rows}

    def on_action(self, action: Action, at: datetime) -> None:
        if isinstance(action, WaveEnded) and action.status == "passed":
            extra = f"; stragglers: {', '.join(action.stragglers)}" if action.stragglers else ""
            failed = f"{len(action.failed)} failed ({', '.join(action.failed)})" if action.failed else "none failed"
            self._send("wave_passed", at, f"wave {action.wave} passed: {failed}{extra}", wave=action.wave,
                       failed=list(action.failed), stragglers=list(action.stragglers))
        elif isinstance(action, HostMoved) and action.state == HostState.ROLLED_BACK:
            self._send("host_rolled_back", at, f"{action.host} rolled back: {action.reason}", wave=action.wave,
                       host=action.host, pool=self.pools.get(action.host, ""), reason=action.reason)
        elif isinstance(action, HostMoved) and action.state == HostState.QUARANTINED:
            self._send("host_quarantined", at, f"{action.host} quarantined, left drained: {action.reason}",
                       wave=action.wave, host=action.host, pool=self.pools.get(action.host, ""), reason=action.reason)
        elif isinstance(action, Finished):
            event = "run_halted" if action.status == "halted" else "run_done"
            words = {"halted": "halted, a person must look", "done": "done", "rolled_back": "done with rollbacks"}
            reason = f": {action.reason}" if action.reason else ""
            self._send(event, at, f"run {words.get(action.status, action.status)}{reason}", status=action.status,
                       reason=action.reason)

    def on_result(self, action: RunStep, outcome: StepOutcome, at: datetime) -> None:
        return None

    # ---------------------------------------------------------------- delivery

    def _send(self, event: str, at: datetime, summary: str, **fields: Any) -> None:
        if not self.urls:
            return
        text = slack_escape(f"gpu-fleet-upgrade {self.run_id} (plan {self.plan_hash[:12]}): {summary}")
        body = {"text": text, "event": event, "run": self.run_id, "plan": self.plan_hash, "at": at.isoformat(),
                "wave": None, "host": None, "reason": "", **fields}
        self._queue.put(body)

    def _deliver_all(self) -> None:
        while (body := self._queue.get()) is not None:
            for url in self.urls:
                self._deliver(url, body)
            self._queue.task_done()
        self._queue.task_done()

    def _deliver(self, url: str, body: dict[str, Any]) -> None:
        retrying = Retrying(stop=stop_after_attempt(self.attempts), reraise=True,
                            wait=wait_exponential(multiplier=self.backoff_s, max=60),
                            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)))
        try:
            retrying(self.post, url, body)
            self.sent.append(body)
        except Exception as exc:  # a receiver that keeps failing is reported, never fatal
            where = urlsplit(url).netloc  # the path of a webhook URL is its secret: never printed
            self.failures.append(f"{body['event']} to {where}: {exc}")

    def close(self, timeout_s: float = 120.0) -> None:
        """Wait (at most ``timeout_s``) for what is queued to be delivered or given up."""
        if not self.urls or not self._worker.is_alive():
            return
        self._queue.put(None)
        self._worker.join(timeout_s)
        if self._worker.is_alive():
            self.failures.append(f"gave up waiting for {self._queue.qsize()} notifications after {timeout_s:.0f}s")
