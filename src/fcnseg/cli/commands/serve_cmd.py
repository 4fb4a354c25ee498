"""``fcnseg serve [--checkpoint CKPT] [--host 127.0.0.1] [--port 8000]``: the web page and HTTP API."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from ...errors import ConfigError, printable
from . import COMMANDS
from ._common import PORT, add_device_arg, add_engine_arg, add_model_args, device_of, number_in, spec_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=COMMANDS["serve"][1])
    add_model_args(p, checkpoint_help="an fcnseg .safetensors checkpoint (default: the quick start's model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=PORT, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--max-upload-mb", type=number_in(0, 4096, open_low=True), default=20.0, help="larger uploads get 413"
    )
    add_device_arg(p)
    add_engine_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ...serve import DEFAULT_CHECKPOINT, create_app
    except ImportError as e:
        raise ConfigError(
            f"fcnseg serve needs FastAPI and uvicorn ({e.name} is missing): pip install 'fcnseg[serve]'"
        ) from None
    from ...inference import Segmenter

    device = device_of(args)
    bare = bool(args.model or args.weights)  # a registry name with a weights file, as eval, predict and export take
    checkpoint = Path(args.weights) if bare else _checkpoint(args.checkpoint, DEFAULT_CHECKPOINT)
    if not _loopback(args.host):
        print(
            f"warning: listening on {args.host}: anyone who can reach this machine can use the model", file=sys.stderr
        )
    source = spec_of(args) if bare else checkpoint
    check_port(args.host, args.port)  # before the model is loaded and before "serving" is printed
    segmenter = Segmenter(source, device=device, engine=args.engine)
    app = create_app(segmenter, max_upload_bytes=int(args.max_upload_mb * 2**20))
    check_port(args.host, args.port)
    print(f"serving {printable(checkpoint)} on http://{args.host}:{args.port}/  (API docs: /api/docs; Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def check_port(host: str, port: int) -> None:
    """Refuse, as one line, an address this process cannot listen on (the port in use, a host not of this machine).

    Binds a socket as uvicorn will (``SO_REUSEADDR``) and closes it; port 0 (any free port) always passes.
    """
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: cannot resolve it ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            why = "in use by another program" if e.errno == errno.EADDRINUSE else e.strerror or str(e)
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({why}); choose another --port") from None


def _checkpoint(given: str | None, default: Path) -> Path:
    checkpoint = Path(given) if given else default
    if not checkpoint.is_file():
        if given:
            raise ConfigError(f"{checkpoint}: checkpoint not found")
        raise ConfigError(
            f"no --checkpoint given, and the quick start's model {default} is not here: run "
            "`fcnseg demo` first (it trains one in a few minutes), or pass --checkpoint CKPT.safetensors"
        )
    return checkpoint


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
