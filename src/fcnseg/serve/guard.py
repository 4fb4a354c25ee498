"""Connections that cannot hold the server: deadlines for request heads and bodies, a cap on open connections.

uvicorn waits for a request head as long as a client likes (its keep-alive timer only runs between requests
and stops at the first byte), so a thousand connections that never finish their headers exhaust the file
descriptors, and a body trickled at a byte a second is read forever. :func:`guarded_protocol` wraps whichever
HTTP protocol class uvicorn uses, at the transport, where every connection is seen from its first byte:

* a **head deadline**: the request head must be complete ``header_timeout`` seconds after the connection opens
  (or after the previous response on a kept-alive connection), however the bytes are spread out;
* a **body deadline** with a minimum rate: ``body_timeout`` seconds, plus one second for every
  ``min_body_rate`` bytes received (Apache's ``mod_reqtimeout`` rule), then ``408``;
* a **cap on open connections**: at the cap, the connection that has waited longest for its head is closed to
  make room (a slow-loris connection, not a client being served), or, when every connection is being served,
  the new one gets ``503`` with ``Retry-After``. asyncio accepts whatever waits in the listen queue before a
  protocol sees it, so the queue is kept to a quarter of the cap (:attr:`ConnectionLimits.backlog`): the
  process never holds more than ``max_connections + backlog`` sockets, and never runs out of descriptors.

The wrapper sees where a request is through a per-connection wrapper of the ASGI app (called once the head is
complete, its ``receive`` and ``send`` watched), so no HTTP is parsed twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["ConnectionLimits", "guarded_protocol", "raw_response"]

log = logging.getLogger("fcnseg")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may take (see the module docstring); the defaults suit uploads of tens of MB."""

    header_timeout: float = 10.0  # seconds for a request head
    body_timeout: float = 20.0  # seconds for a body, plus 1 s per min_body_rate bytes received
    min_body_rate: int = 32 * 1024  # bytes per second a body must keep up on average
    max_connections: int = 256  # open connections (keep it well under the process's file descriptor limit)

    @property
    def backlog(self) -> int:
        """The listen queue, which is also how many connections asyncio accepts at once, before any is capped:
        a quarter of the cap (8 to 2048), so the open sockets never pass ``max_connections + backlog``."""
        return max(8, min(2048, self.max_connections // 4))


def raw_response(status: int, reason: str, detail: str, headers: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 response with a JSON ``{"detail": …}`` body that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()] + ["connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def guarded_protocol(inner: type[asyncio.Protocol], limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=…)``: ``inner`` (uvicorn's HTTP protocol) under ``limits``.

    Each call makes a class with its own register of open connections (one per server).
    """
    attrs = {"inner_class": inner, "limits": limits, "live": {}}
    return type(f"Guarded{inner.__name__}", (_Guarded,), attrs)


class _Guarded(asyncio.Protocol):
    """One connection: uvicorn's protocol inside, the deadlines and the connection cap around it."""

    inner_class: type[asyncio.Protocol]
    limits: ConnectionLimits
    live: dict[_Guarded, None]  # the server's open connections, oldest first

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self.inner: Any = self.inner_class(config=config, server_state=server_state, app_state=app_state, _loop=_loop)
        self.loop = _loop or asyncio.get_event_loop()
        self.app, self.inner.app = self.inner.app, self._app  # uvicorn calls self.app once a head is complete
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.phase, self.since, self.received, self.body_from, self.timed_out = "head", 0.0, 0, 0, False
        self.opened = False  # whether the inner protocol saw the connection (not when refused at the cap)

    # the asyncio protocol, forwarded
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self.transport = transport
        if len(self.live) >= self.limits.max_connections and not self._make_room():
            busy = raw_response(503, "Service Unavailable", "too many open connections; retry", {"retry-after": "1"})
            transport.write(busy)
            transport.close()
            return
        self.live[self] = None
        self.opened = True
        self.inner.connection_made(transport)
        self._enter("head")

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.opened:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.opened else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self.live.pop(self, None)
        if self.opened:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.opened:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.opened:
            self.inner.resume_writing()

    # phases and deadlines
    def _enter(self, phase: str) -> None:
        self._cancel()
        self.phase, self.since, self.body_from = phase, time.monotonic(), self.received
        if phase in ("head", "body") and not self.transport.is_closing():
            self.timer = self.loop.call_at(self.loop.time() + self._allowed(), self._check)

    def _allowed(self) -> float:
        """Seconds the current phase may last in all, as of now."""
        if self.phase == "head":
            return self.limits.header_timeout
        return self.limits.body_timeout + (self.received - self.body_from) / self.limits.min_body_rate

    def _check(self) -> None:
        self.timer = None
        if self.phase not in ("head", "body") or self.transport.is_closing():
            return
        left = self.since + self._allowed() - time.monotonic()
        if left > 0:  # a body that kept up: look again when its extended deadline comes
            self.timer = self.loop.call_at(self.loop.time() + left, self._check)
            return
        self.timed_out = True
        if self.phase == "body":
            limits = self.limits
            detail = f"request body too slow: under {limits.min_body_rate} bytes/s after {limits.body_timeout:g} s"
            self.transport.write(raw_response(408, "Request Timeout", detail))
        log.debug("serve: closed a connection whose request %s did not arrive in time", self.phase)
        self.transport.close()

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its head; whether there was one."""
        waiting = [c for c in self.live if c.phase == "head"]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.since)
        self.live.pop(oldest, None)
        oldest._cancel()
        oldest.transport.close()
        log.debug("serve: at %d connections, closed the one waiting longest for its head", self.limits.max_connections)
        return True

    # the ASGI app of this connection: where the request is
    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self._enter("body" if _has_body(scope) else "app")

        async def watched_receive() -> dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request" and not message.get("more_body", False) and self.phase == "body":
                self._enter("app")
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and self.phase == "body":
                self._enter("response")  # answered before the body was read (413, 415 …)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._enter("head")  # a kept-alive connection: the next head has its own deadline

        try:
            await self.app(scope, watched_receive, watched_send)
        except Exception:
            if not self.timed_out:  # the app failing because we closed the connection is not news
                raise


def _has_body(scope: dict[str, Any]) -> bool:
    for key, value in scope.get("headers", []):
        if key.lower() == b"transfer-encoding":
            return True
        if key.lower() == b"content-length":
            return value.strip() not in (b"0", b"")
    return False
