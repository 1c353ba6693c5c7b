"""uvicorn's httptools protocol with a cap on the request line and headers, for ``zeren serve``.

httptools (llhttp) sets no limit on the size of the headers, and uvicorn sets none on that protocol (its
``h11_max_incomplete_event_size`` applies to the h11 protocol only): a client could send a 200 MiB header,
which the server accumulated for most of a minute. This protocol counts the bytes received while a request's
line and headers are still incomplete; past the cap it answers ``431 Request Header Fields Too Large`` and
closes the connection. The cap is uvicorn's ``h11_max_incomplete_event_size`` (``zeren serve`` sets it from
``ZEREN_MAX_HEADER_BYTES``, default 64 KiB), so the same setting holds whichever protocol runs.

Two checks: while the head is still arriving, the bytes read so far (so a never-ending header is cut off
at once); when it is complete, its parsed size (so a head that came in one read is measured exactly).
"""
from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 64 * 1024


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.max_header_bytes = int(config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES)
        self.in_head = True  # between requests and until the headers are complete
        self.head_bytes = 0
        self.too_large = False

    def data_received(self, data: bytes) -> None:
        counted = self.in_head
        if counted:
            self.head_bytes += len(data)
        super().data_received(data)
        if counted and self.in_head and self.head_bytes > self.max_header_bytes \
                and self.transport is not None and not self.transport.is_closing():
            self._refuse()

    def on_headers_complete(self) -> None:
        self.in_head = False
        size = len(self.url) + 16 + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self.too_large = True
            raise ValueError("headers over the cap")  # httptools stops parsing; send_400_response answers
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self.too_large:
            return self._refuse()
        return super().send_400_response(msg)

    def on_message_complete(self) -> None:
        self.in_head = True
        self.head_bytes = 0
        super().on_message_complete()

    def _refuse(self) -> None:
        detail = (f"the request line and headers are over the {self.max_header_bytes:,}-byte cap; send shorter "
                  f"headers (or put large data in the body)")
        body = json.dumps({"detail": detail, "error": "RequestHeaderFieldsTooLarge", "problems": []}).encode()
        self.logger.warning("refused a request whose headers are over %d bytes", self.max_header_bytes)
        self.too_large = True
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()


__all__ = ["LimitedHttpToolsProtocol", "DEFAULT_MAX_HEADER_BYTES"]
