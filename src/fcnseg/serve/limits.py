"""An ASGI middleware that bounds request bodies before the app (or its form parser) reads them.

FastAPI parses a multipart form, spooling the upload to a temporary file, *before* the handler runs,
so a size check in the handler comes after a 300 MB upload is already on disk. :class:`BodyLimit`
refuses a declared ``Content-Length`` over the limit without reading a byte, and stops a streamed
(chunked) body the moment it passes the limit: the app sees the body end there, and whatever it
answers is replaced by the 413.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BodyLimit"]

Scope = dict[str, Any]


class BodyLimit:
    """Wrap an ASGI ``app``; HTTP request bodies over ``limit + allowance`` bytes get ``413`` with a JSON ``detail``.

    ``allowance``: room for the multipart envelope around an upload of ``limit`` bytes.
    """

    def __init__(self, app: Any, limit: int, allowance: int = 64 * 1024) -> None:
        self.app, self.shown, self.limit = app, limit, limit + allowance

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None and _has_content_length(scope):
            await _reply(send, 400, "malformed Content-Length header")
            return
        if declared is not None and declared > self.limit:
            await _reply(send, 413, f"request body of {declared} bytes exceeds the limit of {self.shown} bytes")
            return
        state = {"read": 0, "over": False, "started": False}

        async def limited_receive() -> dict[str, Any]:
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.limit:
                    state["over"] = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["over"]:
                if not state["started"]:
                    state["started"] = True
                    await _reply(send, 413, f"request body exceeds the limit of {self.shown} bytes")
                return
            state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if state["over"] and not state["started"]:
            await _reply(send, 413, f"request body exceeds the limit of {self.shown} bytes")


def _has_content_length(scope: Scope) -> bool:
    return any(k.lower() == b"content-length" for k, _ in scope.get("headers", []))


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                n = int(value.decode("latin-1"))
            except ValueError:
                return None
            return n if n >= 0 else None
    return None


async def _reply(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
