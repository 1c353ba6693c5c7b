"""Errors raised by the data layer. Each says what is wrong and what to do about it."""
from zeren.geo.errors import GeoInputError


class ZerenError(Exception):
    """Base of the data layer's errors."""


class InputFileError(ZerenError, ValueError):
    """A file that cannot be read as asked (missing, wrong format, wrong columns, bad encoding)."""


class ValidationError(ZerenError, ValueError):
    """Rows that break the schema. ``problems`` lists every bad row, not just the first."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        detail = "".join(f"\n  - {p}" for p in self.problems[:200])
        more = f"\n  ... and {len(self.problems) - 200} more" if len(self.problems) > 200 else ""
        super().__init__(message + detail + more)


class NotFoundError(ZerenError, LookupError):
    """A zone, planner, appointment or project that does not exist."""


class ConflictError(ZerenError):
    """A write that contradicts the store's state (e.g. an illegal workflow step)."""


class StoreError(ZerenError):
    """A store that cannot be opened or used (not a GeoPackage, unreachable database...)."""


__all__ = ["ZerenError", "InputFileError", "ValidationError", "NotFoundError", "ConflictError", "StoreError",
           "GeoInputError"]
