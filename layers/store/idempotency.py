"""Answers kept for retried POSTs: a client that sends ``Idempotency-Key`` and retries (after a timeout or a
dropped connection) gets the first answer back instead of a second record. One row per (token, key): claimed
before the write runs, completed with the answer after it succeeded, released when it failed; rows older than
:data:`KEEP` are forgotten."""
from __future__ import annotations

import datetime as dt
import json

from zeren.layers.store.tables import now

KEEP = dt.timedelta(hours=24)


class IdempotencyTables:
    def claim_idempotency_key(self, token_hash: str, key: str, method_path: str, request_hash: str) -> dict | None:
        """None when this (token, key) is new: it is claimed for this request. Otherwise the row already there:
        ``method_path``, ``request_hash``, ``created_at``, and ``status``/``response``/``headers`` (None while
        the first request has no answer yet)."""
        cutoff = (dt.datetime.now(dt.UTC) - KEEP).isoformat(timespec="seconds")
        with self.transaction() as con:
            self._exec(con, "DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,))
            row = self._exec(con, "SELECT method_path, request_hash, status, response, headers, created_at "
                                  "FROM idempotency_keys WHERE token_hash = ? AND key = ?",
                             (token_hash, key)).fetchone()
            if row is not None:
                names = ("method_path", "request_hash", "status", "response", "headers", "created_at")
                found = dict(zip(names, row))
                found["headers"] = json.loads(found["headers"]) if found["headers"] else {}
                return found
            self._exec(con, "INSERT INTO idempotency_keys (token_hash, key, method_path, request_hash, created_at) "
                            "VALUES (?, ?, ?, ?, ?)", (token_hash, key, method_path, request_hash, now()))
            return None

    def complete_idempotency_key(self, token_hash: str, key: str, status: int, response: str,
                                 headers: dict) -> None:
        with self.transaction() as con:
            self._exec(con, "UPDATE idempotency_keys SET status = ?, response = ?, headers = ? "
                            "WHERE token_hash = ? AND key = ?",
                       (int(status), response, json.dumps(headers, ensure_ascii=False), token_hash, key))

    def release_idempotency_key(self, token_hash: str, key: str) -> None:
        """Forget a claim whose request wrote nothing (it failed): the same key may be sent again."""
        with self.transaction() as con:
            self._exec(con, "DELETE FROM idempotency_keys WHERE token_hash = ? AND key = ? AND status IS NULL",
                       (token_hash, key))
