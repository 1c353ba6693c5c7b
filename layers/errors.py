"""Errors raised by the data layer. Each says what is wrong and what to do about it."""
from zeren.geo.errors import GeoInputError


class ZerenError(Exception):
    """Base of the data layer's errors."""


class InputFileError(ZerenError, ValueError):
    """A file that cannot be read as asked (missing, wrong format, wrong columns, bad encoding)."""


class _WithProblems(ZerenError):
    """An error that lists every problem found (each row, each clash), not just the first."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        self.summary = message
        detail = "".join(f"\n  - {p}" for p in self.problems[:200])
        more = f"\n  ... and {len(self.problems) - 200} more" if len(self.problems) > 200 else ""
        super().__init__(message + detail + more)


class ValidationError(_WithProblems, ValueError):
    """Rows that break the schema. ``problems`` lists every bad row, not just the first."""


class NotFoundError(ZerenError, LookupError):
    """A zone, planner, appointment or project that does not exist."""


class ConflictError(_WithProblems):
    """A write that contradicts the store's state (a second lead over the same dates, an illegal workflow
    step, an edition older than the one in force); ``problems`` names every clash."""


class ForbiddenError(ZerenError):
    """An actor who may not do this (a planner acting on another planner's project or case)."""


class StoreError(ZerenError):
    """A store that cannot be opened or used (not a GeoPackage, unreachable database...)."""


__all__ = ["ZerenError", "InputFileError", "ValidationError", "NotFoundError", "ConflictError", "ForbiddenError", "StoreError",
           "GeoInputError"]
