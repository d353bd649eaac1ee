"""Slurm hostlists (``gpu-h100-[01-02,07],gpu-a100-01``) expanded to node names, with the standard library.

The grammar ``scontrol show hostnames`` reads: entries separated by commas outside brackets; each bracket
holds numbers and ``low-high`` ranges, zero padded to the width of the low bound; several brackets in one
entry multiply (``r[1-2]n[1-2]``). Anything else is a :class:`ValueError`, and so is a list of more than
``MAX_HOSTS`` names (a typo such as ``[1-99999999]`` must not fill the memory).
"""

from __future__ import annotations

import re

MAX_HOSTS = 200_000
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
_PIECE = re.compile(r"([^\[]*)(?:\[([^\]]*)\])?")


def expand_hostlist(text: str, limit: int = MAX_HOSTS) -> list[str]:
    """Every node name of a Slurm hostlist, in order; ValueError when it is not one."""
    names: list[str] = []
    for entry in _entries(text):
        names.extend(_expand_entry(entry, limit - len(names)))
    return names


def _entries(text: str) -> list[str]:
    entries, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested brackets in hostlist {text!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {text!r}")
        elif ch == "," and depth == 0:
            entries.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '[' in hostlist {text!r}")
    entries.append(text[start:])
    if any(not e or e.isspace() or any(c.isspace() for c in e) for e in entries):
        raise ValueError(f"empty entry or blank in hostlist {text!r}")
    return entries


def _expand_entry(entry: str, room: int) -> list[str]:
    names = [""]
    for match in _PIECE.finditer(entry):
        literal, bracket = match.group(1), match.group(2)
        numbers = [""] if bracket is None else _numbers(bracket, entry)
        if len(names) * len(numbers) > room:
            raise ValueError(f"hostlist entry {entry!r} names more than {MAX_HOSTS} nodes")
        names = [n + literal + num for n in names for num in numbers]
    return names


def _numbers(bracket: str, entry: str) -> list[str]:
    out: list[str] = []
    for part in bracket.split(","):
        match = _RANGE.fullmatch(part)
        if not match:
            raise ValueError(f"range {part!r} in hostlist entry {entry!r} is not N or N-M")
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            raise ValueError(f"range {part!r} in hostlist entry {entry!r} goes backwards")
        if int(high) - int(low) >= MAX_HOSTS:
            raise ValueError(f"range {part!r} in hostlist entry {entry!r} names more than {MAX_HOSTS} nodes")
        out.extend(str(n).zfill(len(low)) for n in range(int(low), int(high) + 1))
    return out
