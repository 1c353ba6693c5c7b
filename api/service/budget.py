"""How much geometry work one request (or one command) may ask for: a vertex budget per feature and per
request, checked before any geometry is built, and a deadline checked between chunks of work.

Why: the cost of overlaying a site on the zones grows faster than its vertex count (a 10,000-vertex star
polygon takes seconds), so without a cap one anonymous request could keep a core busy for minutes. The
HTTP door counts positions in the parsed JSON (``api.http.routers._geojson.count_positions``) and the CLI
counts the geometries it read (:func:`geometry_vertices`); both refuse through :meth:`WorkBudget.check`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from zeren.layers.errors import ZerenError


class WorkBudgetExceeded(ZerenError):
    """More vertices than the budget allows (HTTP 413, exit 2); the message names the limit and the count."""


class DeadlineExceeded(ZerenError):
    """The work took longer than the server's deadline and was abandoned (HTTP 503 with Retry-After)."""


class Unavailable(ZerenError):
    """What this server cannot do here or now, whatever the request (HTTP 503): e.g. print a PDF without Chromium."""


class ServerBusy(ZerenError):
    """Every batch worker is busy and the queue is full, or a batch worker stopped (HTTP 503 with Retry-After)."""


@dataclass(frozen=True)
class WorkBudget:
    """``max_vertices`` in one request (all features together), ``max_feature_vertices`` in one feature;
    ``setting`` names what raises them (an environment variable or a command-line option)."""

    max_vertices: int
    max_feature_vertices: int
    vertices_setting: str = "ZEREN_MAX_VERTICES"
    feature_setting: str = "ZEREN_MAX_FEATURE_VERTICES"
    scope: str = "request"  # what max_vertices is counted over, in messages

    def check(self, counts: Sequence[int] | np.ndarray, where: Callable[[int], str] | None = None) -> int:
        """Refuse when one feature has more than ``max_feature_vertices`` positions or all together more than
        ``max_vertices``; returns the total. ``where(i)`` names feature ``i`` in the message."""
        arr = np.asarray(counts, dtype=np.int64)
        if arr.size:
            worst = int(arr.argmax())
            if int(arr[worst]) > self.max_feature_vertices:
                name = where(worst) if where is not None else f"feature {worst}"
                over = int((arr > self.max_feature_vertices).sum())
                more = f" ({over:,} features are over it)" if over > 1 else ""
                raise WorkBudgetExceeded(
                    f"{name} has {int(arr[worst]):,} vertices, over the limit of {self.max_feature_vertices:,} "
                    f"per feature{more}; simplify it (e.g. to 1 m) or split it "
                    f"({self.feature_setting} raises the limit)")
        total = int(arr.sum()) if arr.size else 0
        if total > self.max_vertices:
            raise WorkBudgetExceeded(
                f"the {self.scope} has {total:,} vertices, over the limit of {self.max_vertices:,} per {self.scope}; "
                f"send fewer or simpler features ({self.vertices_setting} raises the limit)")
        return total


# ``zeren assign FILE`` runs on the operator's own machine, where files may be larger: its own defaults.
CLI_MAX_VERTICES = 50_000_000
CLI_MAX_FEATURE_VERTICES = 100_000


def cli_budget(max_vertices: int | None = None, max_feature_vertices: int | None = None) -> WorkBudget:
    return WorkBudget(max_vertices or CLI_MAX_VERTICES, max_feature_vertices or CLI_MAX_FEATURE_VERTICES,
                      "--max-vertices", "--max-feature-vertices", scope="chunk of the file")


def geometry_vertices(geoms) -> np.ndarray:
    """Vertices of each geometry (0 for None), vectorised."""
    import shapely

    arr = np.asarray(geoms, dtype=object)
    if not arr.size:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(shapely.get_num_coordinates(arr), dtype=np.int64)


class Deadline:
    """A point in time after which the work is abandoned: :meth:`check` (called between chunks) raises
    :class:`DeadlineExceeded`; :meth:`cancel` makes the next check raise at once (the client has gone or the
    server gave up waiting)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + float(seconds)
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def expired(self) -> bool:
        return self.cancelled or (self.at is not None and time.monotonic() >= self.at)

    def check(self) -> None:
        if self.expired:
            raise DeadlineExceeded(f"the request took longer than the server's limit of {self.seconds:g} s and was "
                                   f"abandoned; send a smaller batch or try again later")


__all__ = ["cli_budget", "WorkBudget", "WorkBudgetExceeded", "DeadlineExceeded", "ServerBusy", "Deadline", "geometry_vertices"]
