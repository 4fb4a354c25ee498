"""Run the app on uvicorn with every connection guarded (:mod:`fcnseg.serve.guard`) on a socket bound first.

The socket is bound before anything is printed or loaded, so a port in use is one clear line (it used to print
"serving …" and then exit 3).
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from ..errors import ConfigError
from .guard import ConnectionLimits, guarded_protocol

__all__ = ["bind", "make_server", "run_server"]


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (listening starts with the server).

    Raises:
        ConfigError: the address does not resolve, the port is in use or not permitted.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        why = "another program is listening on it" if e.errno == errno.EADDRINUSE else e.strerror
        raise ConfigError(f"{host}:{port}: cannot listen ({why}); choose another --port") from None
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, limits: ConnectionLimits | None = None, *, log_level: str = "warning") -> Any:
    """A ``uvicorn.Server`` for ``app`` whose connections keep ``limits`` (WebSockets off: the app has none)."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    limits = limits or ConnectionLimits()
    config = uvicorn.Config(
        app,
        http=guarded_protocol(AutoHTTPProtocol, limits),
        ws="none",
        lifespan="off",
        log_level=log_level,
        timeout_keep_alive=5,
        backlog=limits.backlog,
        h11_max_incomplete_event_size=16 * 1024,  # a request head larger than this is a 400
    )
    return uvicorn.Server(config)


def run_server(app: Any, sock: socket.socket, limits: ConnectionLimits | None = None) -> None:
    """Serve ``app`` on the bound ``sock`` until interrupted."""
    make_server(app, limits).run(sockets=[sock])
