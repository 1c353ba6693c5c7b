"""The ``zeren`` command line: one door onto the use cases (the other is the HTTP API)."""
