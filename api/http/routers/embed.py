"""``GET /embed/find``: the embeddable find-my-planner page (registered here; built in the next change)."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["maps"])
