"""A live Zeren server in a subprocess (`python -m zeren serve`) on 127.0.0.1 and a free port."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from zeren.api.auth import format_token_entries

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, store, *, workers: int = 1, tokens=(), env: dict | None = None, log=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZEREN_TOKENS": format_token_entries(tokens),
                    "ZEREN_RELOAD_SECONDS": "0.5", **(env or {})}
        full_env.pop("ZEREN_TOKENS_FILE", None)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zeren", "serve", "--store", str(store), "--port", str(self.port),
             "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
            cwd=REPO, env=full_env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, timeout: float = 60.0, workers: int = 1) -> "LiveServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("the server did not become ready")

    def kill(self) -> None:
        """kill -9 the server and its workers (its own process group, which it leads)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self.wait_ready()

    def __exit__(self, *exc):
        self.stop()


@contextmanager
def serving(store, *, log_name: str | None = None, **options) -> Iterator[LiveServer]:
    """A ready ``zeren serve`` on ``store`` (``LiveServer`` options), its output in ``<store>.log`` (or
    ``log_name`` beside the store), stopped at the end."""
    store = Path(store)
    with open(store.with_name(log_name) if log_name else store.with_suffix(".log"), "w") as log:
        srv = LiveServer(store, log=log, **options)
        try:
            yield srv.wait_ready()
        finally:
            srv.stop()
