"""The zone index's batch structures kept between processes, as files of arrays.

Every ``zeren assign`` is a new process, and a large batch of points needs the zone index's point grid and
the led zones' boundary segments: at 30,000 zones they took 2.2 s and 1.7 s to build, on every run, for the
same zones. ``geo.assign`` gives them as plain arrays under a key that digests everything they depend on
(``point_grid_key``, ``lead_segments_key``); this module keeps those arrays, one ``<key>.npz`` file each, so
the next run over the same zones adopts them instead of building them.

A kept file can never give another answer: its key changes with any change of a zone's geometry, of who
leads on the date, of the libraries that computed it or of the format, and a file is only found under its
own key. A file that is not readable (a run killed while writing, a disk error) is a miss: the structures are
built as without a cache, and the file is written again. Files are written to a temporary name and renamed,
so a reader never sees half of one. The folder holds at most ``max_bytes`` (the least recently used files go
first), and only these files: nothing in it is data, deleting it at any time is safe.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["IndexCache", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # a 30,000-zone city's grid and segments are about 50 MB
_KEY = re.compile(r"^[0-9a-f]{16,128}$")
_STALE_TMP_SECONDS = 3600  # a temporary file this old is left over from a killed run


class IndexCache:
    """A folder of kept batch structures: ``load(key)`` the arrays saved under ``key`` (None when there are
    none, or they cannot be read), ``save(key, arrays)``. Safe for several processes at once."""

    def __init__(self, directory, *, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.problem: str | None = None  # why the last save failed (a folder that cannot be written), for a note

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.directory / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as kept:
                arrays = {name: kept[name] for name in kept.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            _unlink(path)  # unreadable (torn by a killed run, or not ours): built again and written anew
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:
            pass
        return arrays

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> bool:
        """Keep ``arrays`` under ``key``; False (and nothing left behind, ``problem`` saying why) when the folder
        cannot be written."""
        path = self._path(key)
        tmp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=self.directory)
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **arrays)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            self.problem = f"{self.directory}: {exc.strerror or exc}"
            return False
        finally:
            if tmp is not None:
                _unlink(Path(tmp))
        self._evict(keep=path)
        return True

    def _evict(self, keep: Path) -> None:
        """The least recently used files go until the folder holds at most ``max_bytes`` (``keep`` stays), and
        temporary files a killed run left behind."""
        files = []
        now = time.time()
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue
            if entry.name.endswith(".tmp"):
                if now - st.st_mtime > _STALE_TMP_SECONDS:
                    _unlink(Path(entry.path))
            elif entry.name.endswith(".npz"):
                files.append((st.st_mtime, st.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path != keep:
                _unlink(path)
                total -= size


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
