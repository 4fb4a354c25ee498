"""``fcnseg serve [--checkpoint CKPT] [--host 127.0.0.1] [--port 8000]``: the web page and HTTP API.

The port is bound first (one line if it is in use), then the model is opened and tried on a test image (one
line if serve could not run it), and only then is "serving …" printed.
"""

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
    add_model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=PORT, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--max-upload-mb", type=number_in(0, 4096, open_low=True), default=20.0, help="larger uploads get 413"
    )
    p.add_argument(
        "--max-seconds",
        type=number_in(0, 3600, open_low=True),
        default=10.0,
        help="model time one image may take here: larger images get 413 (default 10; sets the pixel limit)",
    )
    p.add_argument(
        "--queue", type=number_in(1, 1024, kind=int), default=8, help="requests admitted at once; more get 503"
    )
    p.add_argument(
        "--max-connections",
        type=number_in(1, 100_000, kind=int),
        default=None,
        help="open connections at once (default 256, or fewer where the file descriptor limit, ulimit -n, is low)",
    )
    add_device_arg(p)
    add_engine_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401

        from ...serve import DEFAULT_CHECKPOINT, create_app
        from ...serve.guard import ConnectionLimits
        from ...serve.server import bind, run_server
    except ImportError as e:
        raise ConfigError(
            f"fcnseg serve needs FastAPI and uvicorn ({e.name} is missing): pip install 'fcnseg[serve]'"
        ) from None
    from ...inference import Segmenter
    from ...weights.resolve import is_registered

    device = device_of(args)
    # a registry name with pretrained weights or a weights file, as eval, predict and export take
    named = bool(args.model or args.weights) or is_registered(args.checkpoint)
    connections = _connections(args.max_connections)
    sock = bind(args.host, args.port)  # a port in use is refused before anything is loaded or printed
    try:
        source = spec_of(args) if named else _checkpoint(args.checkpoint, DEFAULT_CHECKPOINT)
        shown = (args.weights or args.checkpoint or args.model) if named else source
        if not _loopback(args.host):
            print(
                f"warning: listening on {args.host}: anyone who can reach this machine can use the model",
                file=sys.stderr,
            )
        segmenter = Segmenter(source, device=device, engine=args.engine)
        app = create_app(
            segmenter,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            max_seconds=args.max_seconds,
            queue_size=args.queue,
        )
        print(f"serving {printable(shown)} on http://{args.host}:{args.port}/  (API docs: /api/docs; Ctrl-C stops)")
        run_server(app, sock, ConnectionLimits(max_connections=connections))
    finally:
        sock.close()
    return 0


def _connections(asked: int | None, default: int = 256, spare: int = 64) -> int:
    """The connection cap: ``asked``, or ``default``; its sockets (the cap and a listen queue of a quarter of it)
    within the file descriptor limit, less ``spare`` for the model and the rest."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return asked or default
    room = (soft - spare) * 4 // 5 if soft != resource.RLIM_INFINITY else 1 << 30
    if asked is not None and asked > room:
        raise ConfigError(
            f"--max-connections {asked}: this process may open {soft} files (ulimit -n): at most {max(1, room)} "
            "connections fit beside their listen queue and the model's files; lower it, or raise the limit"
        )
    return max(1, min(asked or default, room))


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
