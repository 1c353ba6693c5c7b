"""Who acts: every write names its actor (kept in the audit log), and some rules depend on who it is."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """``name`` is what the audit log records; ``planner_id`` is set for a planner acting for themself."""

    name: str
    role: str = "admin"  # admin | planner
    planner_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


SYSTEM = Actor("zeren")
