"""Zeren 责任: who is the responsible planner here?

The installed distribution is one import package, ``zeren``; the repository's top-level folders are its
subpackages (pyproject.toml maps them): ``zeren.geo`` (geo/, the pure spatial core), ``zeren.layers``
(layers/, the data and the store), ``zeren.api`` (api/, the use cases and their two doors, HTTP and CLI),
``zeren.maps`` (maps/, the map pages) and ``zeren.data`` (data/, the demo's boundary files and tables).
This file and ``__main__.py`` (``python -m zeren``) live in api/package/.
"""
__version__ = "0.2.0"
