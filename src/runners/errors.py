"""Mistakes a user can fix: raised by loaders and validators, caught once in `cli.main`.

A `UserError` is printed as one line per problem (where, what, and the fix) with exit code 2; its
traceback only with `--debug`. Every other exception is a bug in polysnipe, reported as such.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = ["ConfigError", "InputError", "Problem", "UnreachableService", "UsageError", "UserError"]


class UserError(Exception):
    """Something in the command line, a file, the settings or the environment that the user can fix."""

    exit_code = 2

    def lines(self) -> list[str]:
        """What to print: one self-contained line per problem."""
        return [str(self)]


class UsageError(UserError):
    """A command-line argument is missing, malformed or out of range."""


class InputError(UserError):
    """An input file is missing, not a file, unreadable, malformed or empty."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class UnreachableService(UserError):
    """A venue, database or bus the command needs does not answer at the configured address."""


@attrs.frozen(slots=True)
class Problem:
    """One invalid setting: where it came from, its dotted key, and what is wrong and how to fix it."""

    #: "defaults", a file path, or "environment variable POLYSNIPE_X"
    source: str
    #: dotted key as written in the file ("risk.max_order_notional_usdc"); "" for the file itself
    key: str
    message: str

    def render(self) -> str:
        return f"{self.source}: {self.key}: {self.message}" if self.key else f"{self.source}: {self.message}"


class ConfigError(UserError):
    """One or more invalid settings, each reported with its source and key."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("a ConfigError needs at least one problem")
        super().__init__("; ".join(p.render() for p in self.problems))

    def lines(self) -> list[str]:
        return [p.render() for p in self.problems]
