"""Errors of the life-circle tools: bad input they cannot work with, said plainly (bilingual, Chinese first)."""
from __future__ import annotations

from zeren.geo.errors import GeoInputError


class LifeCircleError(GeoInputError):
    """Input the life-circle tools cannot work with (bad minutes/speed, no CRS, wrong geometry, empty network...)."""
