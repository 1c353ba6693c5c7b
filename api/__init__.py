"""The use cases (``service``) and their two doors: the HTTP API (``http``) and the command line (``cli``).

Settings are read from the environment in one place (``settings``); tokens are made and checked in ``auth``."""
