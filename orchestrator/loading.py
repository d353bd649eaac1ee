"""Reading user files into models with one-line errors that name the file and the first problem.

Every input file (desired state, facts snapshot, plan, site knowledge, inventory files, extra vars) goes
through these, so a bad file reads the same everywhere: ``plans/x.yaml: pools.a.target.cuda: ...`` and never a
traceback or a hang. The bounds:

- only regular files are read (a FIFO, a device such as ``/dev/zero`` or a directory is refused at once);
- at most :data:`MAX_YAML_BYTES` of YAML, :data:`MAX_JSON_BYTES` of JSON; UTF-8 only;
- nesting at most :data:`MAX_DEPTH` levels; YAML aliases may expand to at most :data:`MAX_NODES` values and
  may not refer to themselves (an alias bomb or a loop is refused before anything is built);
- duplicate mapping keys, NaN and infinity are refused; integers beyond :data:`MAX_INT` are refused;
- models are validated strictly (JSON rules: no ``"22"`` for a number, no ``22.7`` or ``true`` for a count,
  no ``yes`` for a boolean, no list where a name belongs).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import InputError

M = TypeVar("M", bound=BaseModel)
MakeError = Callable[[str, str], InputError]

MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_JSON_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 1_000_000
MAX_INT = 2**53

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def describe_validation(exc: ValidationError) -> str:
    """The first problem as ``loc: message (and N more)``; our own InputErrors keep their wording."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if not _union_tag(p))
    cause = first.get("ctx", {}).get("error")
    message = str(cause) if isinstance(cause, Exception) else str(first.get("msg", exc))
    given = first.get("input")
    if not isinstance(cause, Exception) and isinstance(given, (str, int, float, bool)) and given is not None:
        message += f" (got {_short(given)})"
    more = len({str(e.get("loc", ())[:1]) for e in errors[1:]} - {str(first.get("loc", ())[:1])})
    return f"{loc + ': ' if loc else ''}{message}{f' (and {more} more)' if more > 0 else ''}"


_TAGS = {"int", "str", "float", "bool", "none", "constrained-int", "constrained-str", "constrained-float"}


def _union_tag(part: object) -> bool:
    """pydantic names the member of a union it tried (``int``, ``function-after[...]``): not a key of the file."""
    return isinstance(part, str) and (part in _TAGS or ("[" in part and part.endswith("]")))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | Path, error: MakeError, what: str = "file", limit: int = MAX_YAML_BYTES) -> bytes:
    """A regular file's bytes, at most ``limit``; never blocks on a FIFO, never reads a device."""
    where = str(path)
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise error(where, f"cannot read {what} ({exc.strerror or exc})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(where, f"cannot read {what}: it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise error(where, f"{what} too large ({info.st_size} bytes; at most {limit // (1024 * 1024)} MiB)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise error(where, f"{what} too large (more than {limit // (1024 * 1024)} MiB)")
        return b"".join(chunks)
    except OSError as exc:
        raise error(where, f"cannot read {what} ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def decode(data: bytes, where: str, error: MakeError, what: str = "file") -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(where, f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None
    return text.removeprefix("\ufeff")


def read_text(path: str | Path, error: MakeError, what: str = "file", limit: int = MAX_YAML_BYTES) -> str:
    """A regular UTF-8 file's text within ``limit`` bytes; any problem is ``error(path, problem)``."""
    return decode(read_bytes(path, error, what, limit), str(path), error, what)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number this tool accepts")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; a key given twice leaves fewer entries than pairs
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {twice!r}")
    return out


def _checked_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_INT:
        raise ValueError(f"number {text[:20]}... is too large")
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


_CONTAINERS = (dict, list)


def _check_depth(data: Any, where: str, error: MakeError) -> None:
    """JSON's containers nest at most :data:`MAX_DEPTH` deep (its numbers were checked while parsing)."""
    level = [data] if type(data) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise error(where, f"nested more than {MAX_DEPTH} levels deep")
        below: list[Any] = []
        for value in level:
            items = value.values() if type(value) is dict else value
            below.extend([item for item in items if type(item) in _CONTAINERS])
        level = below


def parse_json(text: str, where: str, error: MakeError) -> Any:
    """JSON with duplicate keys, NaN/Infinity, deep nesting and huge numbers refused.

    Numbers are checked as they are parsed and only containers are walked afterwards: a 10,000-host facts
    snapshot holds millions of values.
    """
    try:
        data = json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_refuse_constant,
                          parse_int=_checked_int, parse_float=_checked_float)
    except json.JSONDecodeError as exc:
        raise error(where, f"not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise error(where, f"not accepted: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # our hooks, and ints longer than Python's digit limit
        raise error(where, f"not accepted JSON: {exc}") from None
    _check_depth(data, where, error)
    return data


class _UniqueKeyLoader(_Loader):  # type: ignore[misc, valid-type]
    """Safe loading that refuses a key given twice in one mapping (merge keys ``<<`` aside)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


def _scan_yaml(text: str, where: str, error: MakeError) -> None:
    """Walk the YAML events (no tree yet): depth, alias expansion and alias loops stay bounded."""
    depth = 0
    count = 0
    open_anchors: list[tuple[str, int, int]] = []  # (anchor, depth at open, count at open)
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (expanded values, depth below it)
    open_names: set[str] = set()
    max_rel: list[int] = []  # per open anchor, deepest relative depth seen
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            name = str(event.anchor)
            if name in open_names:
                raise error(where, f"alias *{name} refers to itself (line {_line(event)})")
            if name not in sizes:
                raise error(where, f"alias *{name} has no anchor (line {_line(event)})")
            values, below = sizes[name]
            count += values
            reach = depth + below
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.ScalarEvent)):
            count += 1
            container = not isinstance(event, yaml.ScalarEvent)
            if container:
                depth += 1
            reach = depth
            if event.anchor is not None:
                name = str(event.anchor)
                if container:
                    open_anchors.append((name, depth, count - 1))
                    open_names.add(name)
                    max_rel.append(0)
                else:
                    sizes[name] = (1, 0)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            if open_anchors and open_anchors[-1][1] == depth:
                name, _, start = open_anchors.pop()
                open_names.discard(name)
                sizes[name] = (count - start, max_rel.pop() + 1)
            depth -= 1
            continue
        else:
            continue
        for i, (_, at, _) in enumerate(open_anchors):
            max_rel[i] = max(max_rel[i], reach - at)
        if reach > MAX_DEPTH:
            raise error(where, f"nested more than {MAX_DEPTH} levels deep (line {_line(event)})")
        if count > MAX_NODES:
            raise error(where, f"more than {MAX_NODES} values once aliases are expanded (an alias bomb?)")


def parse_yaml(text: str, where: str, error: MakeError) -> Any:
    """One YAML document, safely: bounded depth and alias expansion, duplicate keys refused."""
    if len(text) > MAX_YAML_BYTES:
        raise error(where, f"too large (more than {MAX_YAML_BYTES // (1024 * 1024)} MiB of YAML)")
    try:
        _scan_yaml(text, where, error)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        why = f": {problem}" if problem and "duplicate key" in str(problem) else ""
        raise error(where, f"not valid YAML{at}{why}") from None
    except RecursionError:
        raise error(where, f"nested more than {MAX_DEPTH} levels deep") from None
    check_values(data, where, error)
    return data


def _path(parts: list[str]) -> str:
    return ".".join(parts) or "document"


def check_values(data: Any, where: str, error: MakeError) -> None:
    """Every value of a parsed document: finite floats, integers within :data:`MAX_INT`, bounded depth.

    One pass that keeps only a depth per container (a 10,000-host snapshot holds millions of values); the
    path to a bad value is worked out only when there is one.
    """
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error(where, f"nested more than {MAX_DEPTH} levels deep")
        items: Iterable[Any]
        if isinstance(value, dict):
            if not all(type(key) is str for key in value):
                _refuse_value(data, where, error)  # raises unless the odd keys are numbers (YAML allows them)
            items = value.values()
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            items = (value,)
        for item in items:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is dict or kind is list or kind is tuple or isinstance(item, (dict, list, tuple)):
                stack.append((item, depth + 1))
            elif (isinstance(item, int) and abs(item) > MAX_INT) or (isinstance(item, float)
                                                                      and not math.isfinite(item)):
                _refuse_value(data, where, error)


def _refuse_value(data: Any, where: str, error: MakeError) -> None:
    """Find the first bad value again, this time with its path, and raise the one line naming it."""
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        value, at = stack.pop()
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise error(where, f"{_path(at)}: number {str(value)[:20]}... is too large")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise error(where, f"{_path(at)}: {value} is not a finite number")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise error(where, f"{_path(at)}: key {str(key)[:40]!r} is not a name")
                stack.append((item, [*at, str(key)]))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, [*at, str(i)]) for i, item in enumerate(value))


def _plain(value: Any) -> Any:
    """YAML's dates and times as text, so the JSON-mode validation below sees only JSON types."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def validate(model: type[M], data: Any, where: str, error: MakeError, prefix: str = "") -> M:
    """Validate a parsed document strictly (JSON rules); a failure is ``error(where, prefix + first problem)``.

    Strict JSON validation is what keeps ``"22"``, ``22.7`` and ``true`` out of counts, ``"yes"`` out of
    booleans and lists out of names, while still reading enums, times and tuples from their JSON forms.
    """
    try:
        text = json.dumps(data, default=_plain)
    except (TypeError, ValueError) as exc:
        raise error(where, f"{prefix}not a document of plain values ({exc})") from None
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise error(where, prefix + describe_validation(exc)) from exc


def validate_text(model: type[M], text: str, where: str, error: MakeError, prefix: str = "") -> M:
    """Validate a JSON document's own text (already through :func:`parse_json`): one parse less than
    :func:`validate` for big files such as a 10,000-host facts snapshot."""
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise error(where, prefix + describe_validation(exc)) from exc


def load_yaml_file(path: str | Path, error: MakeError, what: str = "file") -> Any:
    """Read and parse one YAML (or JSON) file under every bound above."""
    return parse_yaml(read_text(path, error, what), str(path), error)


def load_json_file(path: str | Path, error: MakeError, what: str = "file") -> Any:
    return parse_json(read_text(path, error, what, limit=MAX_JSON_BYTES), str(path), error)
