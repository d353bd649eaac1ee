"""The plan file: JSON with one key (or host, class, wave, shared list) a line, its sha256, a loader refusing edits.

The first line holds ``plan_hash``: the sha256 of the bytes that follow it, exactly as written. The plan is
serialised once, when it is sealed; ``plan_json`` returns that text. Fingerprints hash parsed inputs, not file
bytes: the inventory as Ansible lists it (the InventoryHost list), the facts snapshot, the desired-state document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.loading import MAX_JSON_BYTES, parse_json, read_text, validate
from orchestrator.model.desired import DesiredState
from orchestrator.model.facts import FactsSnapshot
from orchestrator.model.inventory import InventoryHost
from orchestrator.planner.errors import PlanFileError
from orchestrator.planner.model import Fingerprints, Plan


def canonical(data: Any) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256(data: Any) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def fingerprint_inventory(hosts: Sequence[InventoryHost]) -> str:
    return sha256(sorted((_dump(h) for h in hosts), key=lambda d: str(d["name"])))


def fingerprint_snapshot(snapshot: FactsSnapshot) -> str:
    """What the plan depends on: each host's stack and GPUs, and who was unreachable; not when facts were taken.

    A fresh collection of an unchanged fleet gives the same fingerprint, so apply can compare live facts.
    """
    dumped: dict[int, Any] = {}  # hosts alike share one parsed stack: dump it once
    hosts = {}
    for h in snapshot.hosts:
        stack = h.stack()
        if id(stack) not in dumped:
            dumped[id(stack)] = (stack, _dump(stack))
        hosts[h.host] = {"stack": dumped[id(stack)][1], "gpus": sorted(g.name for g in h.gpus)}
    return sha256({"hosts": hosts, "unreachable": sorted(u.host for u in snapshot.unreachable)})


def fingerprint_desired(desired: DesiredState) -> str:
    return sha256(_dump(desired))


def fingerprints(
    inventory: Sequence[InventoryHost], snapshot: FactsSnapshot, desired: DesiredState, knowledge_version: str
) -> Fingerprints:
    """The four fingerprints ``upgrade apply`` compares with today's inputs."""
    return Fingerprints(
        inventory=fingerprint_inventory(inventory),
        facts=fingerprint_snapshot(snapshot),
        desired=fingerprint_desired(desired),
        knowledge=knowledge_version,
    )


_FIRST = re.compile(r'^\{"plan_hash": "([0-9a-f]*)",$')
_LISTS = ("step_lists", "classes", "domain_sets", "rows", "waves", "pools", "excluded", "warnings")
_SHARED = ("steps", "rollback")  # a class's step lists, kept once in ``step_lists`` and named by index


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder: rows are many small values


def _compact(value: Any) -> str:
    return _COMPACT.encode(value)


def _body(data: dict[str, Any], rows: Sequence[Any] | None = None) -> str:
    """Every key but ``plan_hash``, one a line; long lists one item a line. ``rows`` (tuples) may come apart."""
    parts = []
    for key, value in data.items():
        if key == "plan_hash":
            continue
        if key == "rows" and rows is not None:
            value = rows
        if key in _LISTS and value:
            items = ",\n".join(_compact(v) for v in value)
            parts.append(f"{json.dumps(key)}: [\n{items}\n]")
        else:
            parts.append(f"{json.dumps(key)}: {_compact(value)}")
    return ",\n".join(parts) + "\n}\n"


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def plan_text(data: dict[str, Any]) -> str:
    """A plan's JSON data (as loaded) written as a plan file with a fresh hash: what ``seal`` writes."""
    body = _body(data)
    return f'{{"plan_hash": "{_digest(body)}",\n{body}'


def _pack(plan: Plan) -> tuple[dict[str, Any], list[Any]]:
    """The file's data: step lists and domain sets that many classes and hosts share are written once.

    A class's ``steps`` and ``rollback`` become indexes into ``step_lists``; a row's domains an index into
    ``domain_sets`` (hosts of one rack and switch share them). At 10,000 hosts this is what keeps the file
    under 100 bytes a host: pools of one GPU model plan the same steps, racks hold many hosts.
    """
    data = plan.model_dump(mode="json", exclude={"rows", "classes"})
    step_lists: dict[str, int] = {}
    lists: list[Any] = []
    classes = []
    for cls in plan.classes:
        # classes leave out what their defaults say (nulls, empty lists): the loader puts them back
        dumped = cls.model_dump(mode="json", exclude_defaults=True)
        for key in _SHARED:
            if key in dumped:
                text = _compact(dumped[key])
                if text not in step_lists:
                    step_lists[text] = len(lists)
                    lists.append(dumped[key])
                dumped[key] = step_lists[text]
        classes.append(dumped)
    domain_sets: dict[tuple[tuple[str, str], ...], int] = {}
    sets: list[Any] = []
    rows = []
    for row in plan.rows:
        domains = tuple(sorted(row.domains.items()))
        if domains not in domain_sets:
            domain_sets[domains] = len(sets)
            sets.append(dict(domains))
        rows.append((row.name, row.wave, row.cls, domain_sets[domains]))
    packed: dict[str, Any] = {}
    for name in Plan.model_fields:
        if name == "classes":
            packed["step_lists"] = lists
            packed["classes"] = classes
        elif name == "rows":
            packed["domain_sets"] = sets
            packed["rows"] = None
        else:
            packed[name] = data[name]
    return packed, rows


def _unpack(data: dict[str, Any], where: str) -> None:
    """The loader's inverse of :func:`_pack`, in place; an index out of range is a malformed plan."""
    lists, sets = data.pop("step_lists", None), data.pop("domain_sets", None)

    def at(table: Any, index: int) -> Any:
        if not isinstance(table, list) or not 0 <= index < len(table):
            raise PlanFileError(where, "not a valid plan: a class or host names a shared list the plan does not have")
        return table[index]

    for cls in data.get("classes") or ():
        for key in _SHARED:
            if isinstance(cls, dict) and isinstance(cls.get(key), int):
                cls[key] = at(lists, cls[key])
    for row in data.get("rows") or ():
        if isinstance(row, list) and len(row) == 4 and isinstance(row[3], int):
            row[3] = at(sets, row[3])


def seal(plan: Plan) -> Plan:
    """The plan with ``plan_hash`` set to the sha256 of its file text; the text is kept for ``plan_json``."""
    packed, rows = _pack(plan)
    body = _body(packed, rows=rows)
    digest = _digest(body)
    sealed = plan.model_copy(update={"plan_hash": digest})
    sealed._text = f'{{"plan_hash": "{digest}",\n{body}'
    return sealed


def plan_json(plan: Plan) -> str:
    """The file's text: one key, class, host or wave a line (diffs stay readable), newline at the end."""
    if plan._text is not None:
        return plan._text
    return seal(plan)._text or ""


def parse_plan(text: str, where: str) -> Plan:
    """Parse and verify a plan's text; a hash mismatch means the plan was edited and is refused."""
    first, _, body = text.partition("\n")
    match = _FIRST.match(first)
    if match is None:
        data = parse_json(text, where, PlanFileError)
        if not isinstance(data, dict) or "plan_hash" not in data:
            raise PlanFileError(where, "not a plan (no plan_hash)")
        said, actual = str(data["plan_hash"]), _digest(body)
    else:
        said, actual = match.group(1), _digest(body)
    if said != actual:
        raise PlanFileError(where, f"plan hash mismatch: the file says {said[:12]}, its content "
                                   f"hashes to {actual[:12]}; it was edited after it was made, plan again")
    data = parse_json(text, where, PlanFileError)
    if not isinstance(data, dict):
        raise PlanFileError(where, "not a plan (no plan_hash)")
    _unpack(data, where)
    plan = validate(Plan, data, where, PlanFileError, prefix="not a valid plan: ")
    plan._text = text
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read a plan written by ``upgrade plan``; refuses a missing, malformed or tampered file in one line."""
    return parse_plan(read_text(path, PlanFileError, "plan", limit=MAX_JSON_BYTES), str(path))
