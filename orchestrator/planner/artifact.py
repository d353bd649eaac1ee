"""The plan file: canonical JSON, its own sha256, fingerprints of the inputs, and a loader that refuses edits.

``plan_json`` writes exactly what the hash covers (every key but ``plan_hash``, sorted, compact separators for
hashing), so a re-loaded plan verifies byte for byte. Fingerprints hash parsed inputs, not file bytes: the
inventory as Ansible lists it (the InventoryHost list), the facts snapshot, the desired-state document.
"""

from __future__ import annotations

import hashlib
import json
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
    hosts = {h.host: {"stack": _dump(h.stack()), "gpus": sorted(g.name for g in h.gpus)} for h in snapshot.hosts}
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


def _unhashed(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "plan_hash"}


def seal(plan: Plan) -> Plan:
    """The plan with ``plan_hash`` set to the sha256 of its canonical JSON without that field."""
    return plan.model_copy(update={"plan_hash": sha256(_unhashed(_dump(plan)))})


def plan_json(plan: Plan) -> str:
    """The file's text: indented for people and diffs, in the models' field order (fixed), newline at the end."""
    return plan.model_dump_json(indent=2) + "\n"


def parse_plan(text: str, where: str) -> Plan:
    """Parse and verify a plan's text; a hash mismatch means the plan was edited and is refused."""
    data = parse_json(text, where, PlanFileError)
    if not isinstance(data, dict) or "plan_hash" not in data:
        raise PlanFileError(where, "not a plan (no plan_hash)")
    actual = sha256(_unhashed(data))
    if data["plan_hash"] != actual:
        raise PlanFileError(where, f"plan hash mismatch: the file says {str(data['plan_hash'])[:12]}, its content "
                                   f"hashes to {actual[:12]}; it was edited after it was made, plan again")
    return validate(Plan, data, where, PlanFileError, prefix="not a valid plan: ")


def load_plan(path: str | Path) -> Plan:
    """Read a plan written by ``upgrade plan``; refuses a missing, malformed or tampered file in one line."""
    return parse_plan(read_text(path, PlanFileError, "plan", limit=MAX_JSON_BYTES), str(path))
