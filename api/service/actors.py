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


def public_actor(name: str | None) -> str | None:
    """How an actor is shown to callers who may not read the audit log (anonymous, planners): their role only
    (``admin``, ``planner``, ``system``), never the name that /audit keeps for admins."""
    if name is None:
        return None
    text = str(name)
    if text.startswith(("admin:", "cli:")):  # a token's admin, or an operator at the command line
        return "admin"
    if text.startswith("planner:"):
        return "planner"
    return "system"  # the demo builder, imports made by Zeren itself
