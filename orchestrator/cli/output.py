"""Turning results and errors into output and exit codes: the one place that decides them."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from enum import IntEnum, StrEnum
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from orchestrator.errors import UpgradeError
from orchestrator.loading import describe_validation


class Exit(IntEnum):
    OK = 0
    WARNINGS = 1
    INVALID = 2
    HALTED = 3


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _width() -> int | None:
    """Terminals keep their width; pipes and CI logs get a wide one so version tables are never cut."""
    if sys.stdout.isatty():
        return None
    return max(int(os.environ.get("COLUMNS", "0") or 0), 220)


# Markup and emoji codes are off: every string printed is shown as it is, so user and host text (a GPU
# named "[/x]", a journal reason "E: lock [/var/lib/dpkg/lock]") is data. Styles come only from Text objects
# built by this package (see `styled`).
console = Console(highlight=False, soft_wrap=True, width=_width(), markup=False, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(), markup=False, emoji=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """The program's own styled label followed by plain text: ``styled("error: ", "bold red", message)``."""
    return Text(label, style=style) + Text(rest)


def print_json(data: Any) -> None:
    """Plain JSON on stdout for CI, never coloured or wrapped."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def fail(message: str, code: Exit = Exit.INVALID) -> typer.Exit:
    err_console.print(styled("error: ", "bold red", message))
    return typer.Exit(int(code))


def one_line(text: str) -> str:
    """Line breaks and other control characters of user text shown escaped, so an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def validation_line(exc: ValidationError, where: str = "") -> str:
    """A pydantic error as one line: the first problem with its location."""
    return f"{where}: {describe_validation(exc)}" if where else describe_validation(exc)


def run_guarded(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the app; known errors become one line and exit 2, unknown ones a crash log and exit 3.

    Usage errors are typer's own (it prints usage and exits 2).
    """
    try:
        app(args=args, prog_name="upgrade")
    except SystemExit as exc:
        if exc.code is None:
            return int(Exit.OK)
        return exc.code if isinstance(exc.code, int) else int(Exit.INVALID)
    except UpgradeError as exc:
        err_console.print(styled("error: ", "bold red", one_line(str(exc))))
        return int(Exit.INVALID)
    except ValidationError as exc:
        err_console.print(styled("error: ", "bold red", one_line(validation_line(exc))))
        return int(Exit.INVALID)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:
        with tempfile.NamedTemporaryFile("w", prefix="upgrade-crash-", suffix=".log", delete=False) as fh:
            traceback.print_exc(file=fh)
        err_console.print(styled("internal error: ", "bold red", one_line(
            f"{type(exc).__name__}: {exc} (traceback in {fh.name}; please report it)")))
        return int(Exit.HALTED)
    return int(Exit.OK)
