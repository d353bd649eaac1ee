"""Compatibility knowledge base: sourced facts about NVIDIA drivers, CUDA, GPUs and libraries, and the rules.

Public API (pure, no IO except ``load_knowledge``)::

    knowledge = load_knowledge(site_file_or_None)     # once; knowledge.version fingerprints the facts
    check(knowledge, hardware_or_host, stack, context) -> list[Violation]
    check_transition(knowledge, hardware_or_host, before, after, context) -> list[Violation]
"""

from orchestrator.knowledge.engine import check, check_transition, rule_ids, step_findings, worst
from orchestrator.knowledge.findings import CheckContext, Hardware, Severity, Violation, Workload
from orchestrator.knowledge.loader import Conflict, Knowledge, KnowledgeError, load_knowledge

__all__ = [
    "CheckContext",
    "Conflict",
    "Hardware",
    "Knowledge",
    "KnowledgeError",
    "Severity",
    "Violation",
    "Workload",
    "check",
    "check_transition",
    "load_knowledge",
    "rule_ids",
    "step_findings",
    "worst",
]
