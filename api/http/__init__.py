"""The HTTP door: the FastAPI app (``create_app``), its routers, dependencies and error table."""
