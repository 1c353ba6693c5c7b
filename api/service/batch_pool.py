"""Batch work in worker processes, so a batch never holds the server's interpreter while lookups wait.

Why processes: parsing a 1 MB JSON body, building 10,000 geometries and writing a 5 MB answer hold the GIL
for hundreds of milliseconds, and a thread pool only moves that wait around (issue 13: one stream of
10,000-point ``POST /assign`` raised the /lookup p99 16-fold). Here the server process only moves bytes: the
raw request body goes to a worker process, which parses it, checks the work budget, assigns against its own
copy of the index and encodes (and gzips) the answer; the bytes come back.

* ``workers`` processes at most (``ZEREN_BATCH_WORKERS``), started on first use (forkserver where there is
  one, so a replacement starts in milliseconds) and niced (:data:`NICENESS`), so the interactive process wins
  the CPU whenever both want it.
* Each worker opens the store itself. A job carries the server's change marks (``Workspace.marks``: the last
  audit row and the last boundary import that its catalogue reflects); a worker whose marks differ refreshes
  first, so a batch after a write sees the write, as a lookup does.
* Every job has a deadline (``ZEREN_REQUEST_TIMEOUT``, waiting included). Past it the client gets
  :class:`~zeren.api.service.budget.DeadlineExceeded` (503) and a worker still computing is terminated and
  replaced: the work really stops.
* At most ``queue`` jobs wait for a free worker (``ZEREN_BATCH_QUEUE``); more get :class:`ServerBusy`
  (503 with ``Retry-After``) at once.

A job is a top-level function ``fn(workspace, body, deadline, **params) -> bytes`` (pickled by name): the
pool knows nothing of HTTP, the door that submits the job does.

Each server process (``zeren serve --workers N``) has its own pool, and each worker holds its own copy of the
catalogue (memory: one more index per batch worker). As with any ``multiprocessing`` program, a script that
builds the app itself must keep its top level behind ``if __name__ == "__main__":`` (workers import the main
module); ``python -m zeren serve``, uvicorn and pytest do.
"""
from __future__ import annotations

import asyncio
import gc
import gzip
import logging
import multiprocessing
import os
import pickle
import threading
import time
from typing import Any, Callable

from zeren.api.service.budget import Deadline, DeadlineExceeded, ServerBusy

log = logging.getLogger("zeren.api.batch")

NICENESS = 10  # added to a worker's niceness: the server process (lookups) gets the CPU first
GZIP_MIN_BYTES = 8192  # answers at least this long are gzipped by the worker when the client accepts it
GZIP_LEVEL = 6
STOP_GRACE_S = 0.5  # after SIGTERM, then SIGKILL
ANSWER_GRACE_S = 1.0  # past the deadline, the time the exchange has to stop its worker before the client is answered


# -- the worker process -----------------------------------------------------------------------------
def _worker_main(conn, store: str, niceness: int) -> None:
    """Serve jobs from ``conn`` until it closes: (fn, params, marks, seconds, compress) then the body bytes;
    answers ("ok", encoding) then the answer bytes, or ("error", pickled exception)."""
    try:
        os.nice(niceness)
    except (AttributeError, OSError):  # pragma: no cover - no nice on this platform
        pass
    from zeren.api.service.workspace import Workspace

    workspace = None
    try:  # the index is loaded as the worker starts, before its first job arrives
        workspace = Workspace.open(store)
        workspace.catalogue.warm()
        gc.collect()
        gc.freeze()  # the catalogue out of the collector's sight (see api.http.app._freeze_heap)
    except Exception:  # the first job tries again, and answers the error
        workspace = None
    while True:
        try:
            fn, params, marks, seconds, compress = conn.recv()
            body = conn.recv_bytes()
        except (EOFError, OSError):
            return
        deadline = Deadline(seconds)
        try:
            if workspace is None:
                workspace = Workspace.open(store)
                workspace.catalogue.warm()
                gc.collect()
                gc.freeze()  # the catalogue out of the collector's sight (see api.http.app._freeze_heap)
            elif marks is not None and marks != workspace.marks:
                if workspace.refresh():
                    gc.collect()
                    gc.freeze()
            answer = fn(workspace, body, deadline, **params)
            encoding = None
            if compress and len(answer) >= GZIP_MIN_BYTES:
                answer, encoding = gzip.compress(answer, compresslevel=GZIP_LEVEL, mtime=0), "gzip"
            conn.send(("ok", encoding))
            conn.send_bytes(answer)
        except BaseException as exc:  # every error goes back to the server, which answers it
            try:
                payload = pickle.dumps(exc)
                pickle.loads(payload)
            except Exception:
                payload = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
            try:
                conn.send(("error", payload))
            except (EOFError, OSError):
                return
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                return


class _Worker:
    """One worker process and the server's end of its pipe; started on first use, replaced when stopped."""

    def __init__(self, pool: "BatchPool", number: int):
        self.pool = pool
        self.number = number
        self.process = None
        self.conn = None
        self.jobs = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        ctx = self.pool.context
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(target=_worker_main, args=(child, self.pool.store, self.pool.niceness),
                              name=f"zeren-batch-{self.number}", daemon=True)
        process.start()
        child.close()
        self.process, self.conn = process, parent

    def stop(self) -> None:
        """Terminate the process (the work it was doing stops) and forget it; the next job starts a new one."""
        process, conn = self.process, self.conn
        self.process = self.conn = None
        if conn is not None:
            conn.close()
        if process is not None and process.is_alive():
            process.terminate()
            process.join(STOP_GRACE_S)
            if process.is_alive():
                process.kill()
                process.join(STOP_GRACE_S)


class BatchPool:
    """At most ``workers`` batch jobs computing at once, each in its own process, and at most ``queue`` more
    waiting; see the module's notes. ``run`` is awaited on the server's event loop."""

    def __init__(self, store: str, workers: int, queue: int, *, niceness: int = NICENESS):
        if workers < 1 or queue < 0:
            raise ValueError("a batch pool needs at least 1 worker and a queue of at least 0")
        self.store = str(store)
        self.workers = int(workers)
        self.queue = int(queue)
        self.niceness = int(niceness)
        methods = multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:  # the fork server imports the heavy modules once; each worker forks from it
            self.context.set_forkserver_preload(["zeren.api.service.batch_pool", "zeren.api.service.workspace",
                                                 "zeren.api.service.assign"])
        self._all = [_Worker(self, i) for i in range(self.workers)]
        self._idle: asyncio.Queue | None = None
        self._waiting = 0
        self._lock = threading.Lock()
        self.replaced = 0  # workers terminated past their deadline (or lost) and replaced

    def pids(self) -> list[int]:
        return [w.pid for w in self._all if w.pid is not None]

    async def run(self, fn: Callable[..., bytes], body: bytes, *, params: dict | None = None, marks: Any = None,
                  timeout: float, compress: bool = False) -> tuple[bytes, str | None]:
        """``fn(workspace, body, deadline, **params)`` in a worker; returns (answer bytes, content encoding or
        None). Raises what ``fn`` raised, :class:`DeadlineExceeded` past ``timeout`` seconds (waiting
        included) or :class:`ServerBusy` when the queue is full."""
        import anyio

        deadline = Deadline(timeout)
        if self._idle is None:
            self._idle = asyncio.Queue()
            for w in self._all:
                self._idle.put_nowait(w)
        if self._idle.empty() and self._waiting >= self.queue:
            raise ServerBusy(f"all {self.workers} batch worker(s) are busy and {self._waiting} batch(es) are waiting; "
                             f"try again shortly")
        self._waiting += 1
        try:
            worker = await asyncio.wait_for(self._idle.get(), max(0.0, deadline.at - time.monotonic()))
        except asyncio.TimeoutError:
            raise _late(timeout) from None
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()

        def exchange():
            try:
                return self._exchange(worker, fn, body, params or {}, marks, deadline, compress)
            finally:  # the worker is free again only once its exchange is over, even if the client was answered
                loop.call_soon_threadsafe(self._idle.put_nowait, worker)

        # the exchange stops (and terminates) a worker past the deadline, then answers; should the thread be
        # stuck elsewhere (a worker's start on a loaded machine), the client is answered shortly after anyway
        with anyio.move_on_after(max(0.0, deadline.at - time.monotonic()) + ANSWER_GRACE_S):
            return await anyio.to_thread.run_sync(exchange, abandon_on_cancel=True)
        raise _late(timeout)

    def _exchange(self, worker: _Worker, fn, body: bytes, params: dict, marks, deadline: Deadline,
                  compress: bool) -> tuple[bytes, str | None]:
        if worker.process is None or not worker.process.is_alive():
            worker.stop()
            worker.start()
        remaining = deadline.at - time.monotonic()
        if remaining <= 0:
            raise _late(deadline.seconds)
        conn = worker.conn
        try:
            conn.send((fn, params, marks, remaining, compress))
            conn.send_bytes(body)
            if not conn.poll(max(0.0, deadline.at - time.monotonic())):
                self._replace(worker, "past its deadline")
                raise _late(deadline.seconds)
            kind, payload = conn.recv()
            if kind == "ok":
                worker.jobs += 1
                return conn.recv_bytes(), payload
        except (EOFError, OSError, pickle.PickleError):
            self._replace(worker, "lost")
            raise ServerBusy("a batch worker stopped while computing; try again shortly") from None
        worker.jobs += 1
        raise pickle.loads(payload)

    def _replace(self, worker: _Worker, why: str) -> None:
        log.warning("batch worker %s (pid %s) %s: terminated and replaced", worker.number, worker.pid, why)
        worker.stop()
        try:
            worker.start()  # the replacement loads the index now, before the next batch comes
        except Exception as exc:  # pragma: no cover - then the next batch starts one
            log.warning("could not start a replacement batch worker: %s", exc)
        with self._lock:
            self.replaced += 1

    def close(self) -> None:
        for w in self._all:
            w.stop()


def _late(seconds) -> DeadlineExceeded:
    return DeadlineExceeded(f"the request took longer than the server's limit of {seconds:g} s and was abandoned; "
                            f"send a smaller batch or try again later")


__all__ = ["BatchPool", "ServerBusy", "NICENESS"]
