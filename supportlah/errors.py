"""What every command of the CLI may raise or print: kept apart from ``supportlah.cli`` so the
commands that live with their own code (admin, console, tickets, eval) need not import the CLI
that imports them."""
from __future__ import annotations

import json


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit code 1."""


def print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))
