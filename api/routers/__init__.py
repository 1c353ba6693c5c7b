"""The API's routers: thin, each calling geo/ and layers/ (see api/app.py)."""
