"""``Idempotency-Key`` on the POSTs that write: a client that did not get an answer (a timeout, a dropped
connection, a restarted server) retries with the same key and gets the first answer back, with
``Idempotent-Replayed: true``, instead of a second record.

One pure-ASGI middleware for every writing POST (the routes know nothing of it). Keys belong to the token that
sent them (its SHA-256), are kept in the store (table ``idempotency_keys``, both engines) for 24 hours, and
hold the answer of a request that succeeded (2xx); a request that failed releases its key, so it may be sent
again. The same key with another request (path, query, content type or body) is a 422 naming the key; a key
whose first request has no answer yet (still running, or the server stopped during it) is a 409.
"""
from __future__ import annotations

import hashlib
import json
import re

import anyio
from zeren.api.auth import hash_token
from zeren.api.http.errors import error_body

HEADER = b"idempotency-key"
REPLAYED = (b"idempotent-replayed", b"true")
# the POSTs that write (computations such as /assign are answered afresh: nothing to protect)
WRITING_POSTS = re.compile(r"^/(projects|planners|appointments|zones/import|editions/carry-over)(/|$)")
MAX_KEY_LENGTH = 255
MAX_KEPT_BYTES = 16 * 1024 * 1024  # larger answers are not kept (the key is then released)
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")
KEPT_HEADERS = (b"content-type", b"location")


class IdempotencyMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not WRITING_POSTS.match(scope["path"]):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        key = headers.get(HEADER)
        if key is None:
            return await self.app(scope, receive, send)
        key = key.decode("latin-1").strip()
        if not _KEY.match(key):
            return await _answer(send, 422, error_body(
                f"Idempotency-Key {key[:60]!r}: use 1 to {MAX_KEY_LENGTH} visible ASCII characters (a UUID is "
                f"best), one new key per record you create", "ValidationError"))
        token = _bearer(headers.get(b"authorization"))
        app_state = scope["app"].state
        if token is None or app_state.tokens.authenticate(token) is None:
            return await self.app(scope, receive, send)  # the route answers 401; nothing to keep
        store = app_state.zeren.store
        body, more = await _read_body(receive)
        if more is None:
            return  # the client went away before sending its whole body: no answer to give
        query = scope.get("query_string", b"")
        method_path = f"POST {scope['path']}"
        digest = hashlib.sha256()
        for part in (method_path.encode(), query, headers.get(b"content-type", b""), body):
            digest.update(len(part).to_bytes(8, "big") + part)
        request_hash, owner = digest.hexdigest(), hash_token(token)

        found = await anyio.to_thread.run_sync(store.claim_idempotency_key, owner, key, method_path, request_hash)
        # (a store that cannot be written raises here, as the write itself would: the error handlers answer)
        if found is not None:
            if found["request_hash"] != request_hash:
                return await _answer(send, 422, error_body(
                    f"Idempotency-Key {key!r} was sent with another request ({found['method_path']} at "
                    f"{found['created_at']}); a key stands for one request: send a new key for a new record",
                    "ValidationError"))
            if found["status"] is None:
                return await _answer(send, 409, error_body(
                    f"Idempotency-Key {key!r}: the request sent with it at {found['created_at']} has no answer "
                    f"yet (it is still running, or the server stopped during it); retry in a moment, and if this "
                    f"persists check whether the record was made before sending it with a new key",
                    "ConflictError"), [(b"retry-after", b"2")])
            kept = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in found["headers"].items()]
            return await _answer_raw(send, int(found["status"]), found["response"].encode("utf-8"),
                                     kept + [REPLAYED])

        replayed = {"sent": False}

        async def replay_receive():
            if not replayed["sent"]:
                replayed["sent"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await more()

        answer = {"status": None, "headers": [], "chunks": [], "size": 0}

        async def capture_send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = message.get("headers") or []
            elif message["type"] == "http.response.body":
                answer["size"] += len(message.get("body", b""))
                if answer["size"] <= MAX_KEPT_BYTES:
                    answer["chunks"].append(message.get("body", b""))
            await send(message)

        kept = False
        try:
            await self.app(scope, replay_receive, capture_send)
            status = answer["status"]
            if status is not None and 200 <= status < 300 and answer["size"] <= MAX_KEPT_BYTES:
                try:
                    text = b"".join(answer["chunks"]).decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None:
                    keep = {k.decode("latin-1"): v.decode("latin-1") for k, v in answer["headers"]
                            if k.lower() in KEPT_HEADERS}
                    await anyio.to_thread.run_sync(store.complete_idempotency_key, owner, key, status, text, keep)
                    kept = True
        finally:
            if not kept:
                await anyio.to_thread.run_sync(store.release_idempotency_key, owner, key)


def _bearer(value: bytes | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _read_body(receive):
    """The whole body (the body-size cap runs before this), and a receive for what comes after it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks), None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), receive


async def _answer(send, status: int, body: dict, extra=()) -> None:
    await _answer_raw(send, status, json.dumps(body, ensure_ascii=False).encode("utf-8"),
                      [(b"content-type", b"application/json"), *extra])


async def _answer_raw(send, status: int, body: bytes, headers) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
