"""Fact sources at the edge: this machine, live hosts through Ansible, or a stored snapshot."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.ansible import HostStatus, PlaybookResult, run_playbook
from orchestrator.errors import FactsError
from orchestrator.hostside.collector import CommandResult, collect
from orchestrator.loading import MAX_JSON_BYTES, parse_json, read_text, validate_text
from orchestrator.model.facts import FactsSnapshot, HostFacts, UnreachableHost, parse_host_facts
from orchestrator.model.inventory import InventoryHost

COMMAND_TIMEOUT_S = 60


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _run(cmd: list[str]) -> CommandResult:
    exe = cmd[0] if cmd[0].startswith("/") else shutil.which(cmd[0])
    if not exe:
        return 127, "", f"{cmd[0]}: command not found"
    try:
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              env={**os.environ, "LC_ALL": "C"}, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"{cmd[0]} timed out after {COMMAND_TIMEOUT_S}s"
    except OSError as exc:
        return 126, "", f"{cmd[0]}: {exc}"
    return proc.returncode, proc.stdout, proc.stderr


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _resolve(path: str) -> str | None:
    return os.path.realpath(path) if os.path.exists(path) else None


def collect_local(host: str | None = None) -> HostFacts:
    """Collect this machine's stack with the same code the Ansible module runs on hosts."""
    raw = collect(_run, _read, _listdir, _resolve)
    return parse_host_facts(host or socket.gethostname(), now_iso(), raw)


def host_finished(event: dict[str, Any]) -> tuple[str, str] | None:
    """(host, ok|failed|unreachable) when an ansible-runner event ends a host's facts collection, else None."""
    kind = event.get("event")
    data = event.get("event_data") or {}
    host = str(data.get("host") or "")
    if not host:
        return None
    if kind == "runner_on_unreachable":
        return host, "unreachable"
    if kind == "runner_on_failed" and not data.get("ignore_errors"):
        return host, "failed"
    res = data.get("res") or {}
    if kind == "runner_on_ok" and isinstance(res, dict) and "gpu_stack" in (res.get("ansible_facts") or {}):
        return host, "ok"
    return None


def collect_live(inventory_path: str | Path, hosts: list[InventoryHost], *, limit: str | None = None,
                 forks: int = 20, on_host: Callable[[str, str], None] | None = None) -> FactsSnapshot:
    """Run ``playbooks/facts.yml`` over the inventory; unreachable or failing hosts are listed with the reason.

    ``on_host(host, outcome)`` is told once per host as it finishes (a progress bar).
    """
    told: set[str] = set()

    def progress(event: dict[str, Any]) -> None:
        done = host_finished(event)
        if on_host is not None and done is not None and done[0] not in told:
            told.add(done[0])
            on_host(*done)

    result = run_playbook("facts.yml", inventory_path, limit=limit, forks=forks, on_event=progress)
    return snapshot_from_run(str(inventory_path), [h.name for h in hosts], result, now_iso())


def snapshot_from_run(inventory: str, expected: list[str], result: PlaybookResult, collected_at: str) -> FactsSnapshot:
    """Turn a facts playbook result into a snapshot: one record per expected host, facts or a reason."""
    collected: list[HostFacts] = []
    unreachable: list[UnreachableHost] = []
    for name in sorted(expected):
        tasks = [t for t in result.tasks if t.host == name]
        ok = next((t for t in tasks if t.status == HostStatus.OK and "gpu_stack" in
                   t.result.get("ansible_facts", {})), None)
        if ok is not None:
            try:
                collected.append(parse_host_facts(name, collected_at, ok.result["ansible_facts"]["gpu_stack"]))
            except FactsError as exc:
                unreachable.append(UnreachableHost(host=name, reason=exc.problem))
            continue
        bad = next((t for t in tasks if t.status in (HostStatus.UNREACHABLE, HostStatus.FAILED)), None)
        if bad is not None:
            kind = "unreachable" if bad.status == HostStatus.UNREACHABLE else "fact collection failed"
            unreachable.append(UnreachableHost(host=name, reason=f"{kind}: {bad.message or 'no message'}"))
        else:
            unreachable.append(UnreachableHost(
                host=name, reason=f"no result from Ansible (run status {result.status}, rc {result.rc})"))
    return FactsSnapshot(collected_at=collected_at, inventory=inventory, hosts=collected, unreachable=unreachable)


def load_snapshot(path: str | Path) -> FactsSnapshot:
    """Read a snapshot written by ``upgrade facts --output json``; any problem names the file."""
    where = str(path)
    text = read_text(path, FactsError, "facts snapshot", limit=MAX_JSON_BYTES)
    parse_json(text, where, FactsError)  # the bounds every input keeps (duplicate keys, depth, numbers)
    snapshot = validate_text(FactsSnapshot, text, where, FactsError, prefix="not a facts snapshot: ")
    for host in snapshot.hosts:  # versions parse, so later steps cannot fail without naming the file (a GPU
        try:                     # model nothing describes only leaves its host out of the fleet)
            host.stack()
        except FactsError as exc:
            raise FactsError(where, str(exc)) from None
    return snapshot


def snapshot_json(snapshot: FactsSnapshot) -> str:
    return snapshot.model_dump_json(indent=2) + "\n"
