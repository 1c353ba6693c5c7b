"""Fixtures for the data-layer tests (defined in _support.py, which tests/test_cli.py imports too)."""
from tests.layers._support import demo_frames, demo_store, demo_template  # noqa: F401 - fixtures
