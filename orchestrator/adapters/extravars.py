"""Extra vars for the playbooks from the command line, a file (``-e @FILE``) or the environment.

A secret (``ansible_become_password``) belongs in a file or in the environment, never in ``-e KEY=VALUE``,
where every user of the machine can read it in ``ps``. Later sources win: environment, then each ``-e`` in
order, as with ``ansible-playbook``.

Example::

    UPGRADE_VAR_ansible_become_password=... upgrade apply plan.json -e @site-vars.yml -e drain_grace=60
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.errors import InputError
from orchestrator.loading import load_yaml_file

ENV_PREFIX = "UPGRADE_VAR_"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def extra_vars(args: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``UPGRADE_VAR_<name>`` variables, then each ``KEY=VALUE`` or ``@FILE`` (YAML or JSON mapping) in order."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX):
            out[_checked(key.removeprefix(ENV_PREFIX), f"environment variable {key}")] = value
    for arg in args:
        if arg.startswith("@"):
            path = arg[1:]
            data = load_yaml_file(path, InputError, "extra vars file")
            if not isinstance(data, dict):
                raise InputError(path, "extra vars file: expected a mapping of variable names to values")
            out.update({_checked(str(k), path): v for k, v in data.items()})
        elif "=" in arg:
            key, value = arg.split("=", 1)
            out[_checked(key, "--extra-var")] = value
        else:
            raise InputError("--extra-var", f"{arg[:60]!r}: expected KEY=VALUE or @FILE")
    return out


def _checked(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise InputError(where, f"{name[:60]!r} is not a variable name")
    return name
