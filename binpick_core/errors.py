"""The error every `binpick` subcommand raises for a user-facing failure.

It lives below both halves so that the factory's commands (`binpick train`, `binpick mikado`, ...)
and the appliance's (`binpick run`, ...) raise the same type without importing each other;
`edge.cli` prints it as one line.
"""

from __future__ import annotations


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2, no traceback."""
