"""The files Zeren ships in ``zeren.data`` (the repository's data/ folder), found wherever Zeren is installed.

Nothing is read relative to the repository: an installed wheel and an editable checkout answer alike."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_file(name: str) -> Path:
    """The path of a shipped data file (``chengdu_hangzhou.gpkg``, ``facility_categories.csv``...)."""
    path = Path(str(files("zeren.data").joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"{name}: not among Zeren's data files (is the installation complete?)")
    return path
