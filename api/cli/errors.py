"""From domain errors to exit codes: ONE table for the command line, as ``zeren.api.http.errors`` is the
one table from the same errors to HTTP statuses. A command raises; ``main`` prints the message (which names
the file, row or field and says what to do) and exits with the code found here."""
from __future__ import annotations

from zeren.geo.errors import GeoInputError
from zeren.layers.errors import (ConflictError, ForbiddenError, InputFileError, NotFoundError, StoreError,
                                 ValidationError, ZerenError)

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # the input (a file, an argument, the store's state) cannot be used as asked
EXIT_INTERRUPTED = 1  # stopped from outside (a closed pipe, Ctrl-C)


class CommandError(Exception):
    """A bad command line or input found by a command itself: printed as it is."""


# Most specific first; every domain error is bad input for the command line (exit 2).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (CommandError, EXIT_BAD_INPUT),
    (ValidationError, EXIT_BAD_INPUT),
    (ConflictError, EXIT_BAD_INPUT),
    (NotFoundError, EXIT_BAD_INPUT),
    (ForbiddenError, EXIT_BAD_INPUT),
    (InputFileError, EXIT_BAD_INPUT),
    (StoreError, EXIT_BAD_INPUT),
    (ZerenError, EXIT_BAD_INPUT),
    (GeoInputError, EXIT_BAD_INPUT),
    (FileNotFoundError, EXIT_BAD_INPUT),
    (FileExistsError, EXIT_BAD_INPUT),
    (IsADirectoryError, EXIT_BAD_INPUT),
    (PermissionError, EXIT_BAD_INPUT),
    (ValueError, EXIT_BAD_INPUT),
    (OSError, EXIT_BAD_INPUT),
)
HANDLED = tuple(cls for cls, _ in EXIT_CODES)


def exit_code(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    raise exc
