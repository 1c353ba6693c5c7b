"""Fixtures for the use-case tests (the demo store, copied per test)."""
from tests.layers._support import demo_frames, demo_store, demo_template  # noqa: F401 - fixtures
