"""Reading user files into models with one-line errors that name the file and the first problem.

Every input file (desired state, facts snapshot, plan, knowledge data) goes through these, so a bad file
reads the same everywhere: ``plans/x.yaml: pools.a.target.cuda: ...`` and never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import InputError

M = TypeVar("M", bound=BaseModel)
MakeError = Callable[[str, str], InputError]


def describe_validation(exc: ValidationError) -> str:
    """The first problem as ``loc: message (and N more)``; our own InputErrors keep their wording."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    cause = first.get("ctx", {}).get("error")
    message = str(cause) if isinstance(cause, Exception) else str(first.get("msg", exc))
    more = len(errors) - 1
    return f"{loc + ': ' if loc else ''}{message}{f' (and {more} more)' if more > 0 else ''}"


def read_text(path: str | Path, error: MakeError, what: str = "file") -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(str(path), f"cannot read {what} ({exc.strerror or exc})") from exc


def parse_json(text: str, where: str, error: MakeError) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(where, f"not JSON (line {exc.lineno}: {exc.msg})") from exc


def parse_yaml(text: str, where: str, error: MakeError) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(where, f"not valid YAML{at}") from exc


def validate(model: type[M], data: Any, where: str, error: MakeError, prefix: str = "") -> M:
    """``model.model_validate(data)`` with a failure turned into ``error(where, prefix + first problem)``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(where, prefix + describe_validation(exc)) from exc
