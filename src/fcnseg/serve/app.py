"""The web app: a page (``/``), ``POST /api/segment``, ``GET /api/info`` and ``GET /healthz``.

Uploads are checked before any inference: the declared size (``Content-Length``) and the bytes actually
read against ``max_upload_bytes`` (413), the content type against the image types Pillow decodes (415),
and the decode itself, with a pixel limit read from the header (400 / 413); each error is a JSON
``{"detail": …}`` that says what is wrong. The pixel limit is scaled to the model's cost: at start the model
runs on a test image (a model that cannot run on the images serve accepts is refused there) and the limit
becomes the pixels it handles in ``max_seconds``, so no single upload holds the model for long. Inference
runs in a worker thread, one image at a time, behind a bounded queue (:mod:`fcnseg.serve.queue`): a request
that finds it full gets ``503`` with ``Retry-After`` at once, and the event loop keeps answering ``/healthz``.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..errors import DataError, first_line
from ..imageio import read_rgb
from ..inference import Segmenter
from ..io import palette_png
from ..viz import palette_for
from .about import example_png, model_card
from .limits import BodyLimit
from .queue import Busy, ModelQueue

__all__ = ["DEFAULT_CHECKPOINT", "IMAGE_TYPES", "PROBE_SIDE", "create_app", "model_cost"]

log = logging.getLogger("fcnseg")

#: the model the README's quick start (``fcnseg demo``) trains
DEFAULT_CHECKPOINT = Path("runs/demo/checkpoints/best.safetensors")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif")
#: the side of the square test image the model runs on at start (its time gives the cost per pixel)
PROBE_SIDE = 256
#: the smallest per-image pixel limit worth serving (a 64×64 image)
MIN_PIXELS = 64 * 64


def model_cost(segmenter: Segmenter, side: int = PROBE_SIDE) -> float:
    """Seconds per pixel of ``segmenter`` on this machine, from a ``side``×``side`` image (the faster of two runs).

    The model also runs on a 1×1 image first: the smallest image serve accepts.

    Raises:
        DataError: the model fails on either image (it could not serve the images serve accepts).
    """
    rng = np.random.default_rng(0)
    seconds = []
    for h, w in ((1, 1), (side, side), (side, side)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        started = time.perf_counter()
        try:
            segmenter.predict(image)
        except Exception as e:  # whatever it is, serve would fail on every such upload
            raise DataError(f"the model cannot run on a {w}×{h} RGB image: {type(e).__name__}: {first_line(e)}") from e
        seconds.append(time.perf_counter() - started)
    return max(min(seconds[1:]), 1e-9) / (side * side)


def create_app(
    segmenter: Segmenter,
    *,
    name: str = "",
    max_upload_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    max_seconds: float = 10.0,
    queue_size: int = 8,
    per_client: int | None = None,
    seconds_per_pixel: float | None = None,
) -> FastAPI:
    """A FastAPI app serving ``segmenter``.

    Args:
        name: what the page calls the model (default: its registry name).
        max_upload_bytes: larger uploads get 413.
        max_pixels: larger images (width × height) get 413 before they are decoded; lowered to what the model
            handles in ``max_seconds`` on this machine.
        max_seconds: the model time one image may take (sets the pixel limit from the model's cost).
        queue_size: requests admitted at once (one on the model, the rest waiting); beyond, 503 + Retry-After.
        per_client: places in the queue one client address may hold (default: a quarter of them, at least 1).
        seconds_per_pixel: the model's cost, if known (default: measured now by :func:`model_cost`).

    Raises:
        DataError: a model serve cannot show (several heads, more than 256 classes, not RGB), one that fails on
            a test image, or one too slow to serve a 64×64 image in ``max_seconds``.
    """
    served = _served(segmenter, name, max_upload_bytes, max_pixels, max_seconds, seconds_per_pixel)
    per_client = per_client or max(1, queue_size // 4)
    served.queue = ModelQueue(queue_size, per_client, served.cost, typical_pixels=min(served.pixels, 1 << 20))
    app = FastAPI(title="fcnseg", summary=f"FCN semantic segmentation: {served.title}", docs_url="/api/docs")
    _add_pages(app, served)
    _add_segment(app, served)
    # bodies over the limit (plus the multipart envelope) are refused before FastAPI spools them
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    return app


@dataclass
class _Served:
    """What the routes need: the model, how it is shown, and its limits."""

    segmenter: Segmenter
    title: str
    classes: list[str]
    palette: np.ndarray
    card: Any
    max_upload_bytes: int
    max_seconds: float
    cost: float  # seconds per pixel
    pixels: int  # per image
    queue: ModelQueue = field(init=False)


def _served(
    segmenter: Segmenter, name: str, max_upload_bytes: int, max_pixels: int, max_seconds: float, cost: float | None
) -> _Served:
    """The model checked for what serve can show and run, and its pixel limit from its cost."""
    model = segmenter.model
    if getattr(model, "multi_head", False):
        raise DataError("fcnseg serve shows single-head models (one label per pixel)")
    num_classes = int(model.num_classes)
    if num_classes > 256:
        raise DataError(f"fcnseg serve shows up to 256 classes (masks are 8-bit PNGs); this model has {num_classes}")
    classes = list(segmenter.classes) or [f"class_{i}" for i in range(num_classes)]
    cost = cost if cost is not None else model_cost(segmenter)
    pixels = min(max_pixels, int(max_seconds / cost))
    if pixels < MIN_PIXELS:
        raise DataError(
            f"the model takes about {cost * MIN_PIXELS:.1f} s for a 64×64 image here, over --max-seconds "
            f"{max_seconds:g}: it could serve nothing; raise --max-seconds, or serve on a faster device"
        )
    log.info(
        "serve: about %.3g s per megapixel here; images up to %d pixels (%g s each)", cost * 1e6, pixels, max_seconds
    )
    title = name or getattr(model, "arch", "FCN")
    palette = palette_for(classes)[:num_classes]
    return _Served(
        segmenter, title, classes, palette, model_card(segmenter), max_upload_bytes, max_seconds, cost, pixels
    )


def _add_pages(app: FastAPI, served: _Served) -> None:
    """``/``, ``/healthz``, ``/api/info`` and the examples."""
    page = resources.files("fcnseg.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {
            "model": served.title,
            "classes": served.classes,
            "palette": served.palette.tolist(),
            "preprocessing": served.segmenter.preprocessing.to_dict(),
            "max_upload_bytes": served.max_upload_bytes,
            "max_pixels": served.pixels,
            "max_seconds": served.max_seconds,
            "queue_size": served.queue.size,
            "trained_on": served.card,
        }

    @app.get("/api/example/{index}.png", include_in_schema=False)
    def example(index: int) -> Response:
        png = example_png(served.card, index)
        if png is None:
            raise HTTPException(404, f"no example {index}: examples exist for models trained on synthetic shapes")
        return Response(png, media_type="image/png")


def _add_segment(app: FastAPI, served: _Served) -> None:
    """``POST /api/segment``: checked, queued (503 + Retry-After when full), decoded under the pixel limit, run."""

    @app.post("/api/segment", response_model=None)
    async def segment(
        request: Request,
        image: Annotated[UploadFile, File(description="the image to segment (JPEG, PNG, WebP, BMP, TIFF, GIF)")],
        format: Annotated[str, Query(pattern="^(png|json)$", description="png: the mask; json: shares + mask")] = "png",
    ) -> Response:
        data = await image.read(served.max_upload_bytes + 1)  # BodyLimit has bounded the body already
        _check_upload(image, data, served.max_upload_bytes)
        started = time.perf_counter()
        name, queue = image.filename or "upload", served.queue
        try:
            with queue.admit(request.client.host if request.client else "unknown") as ticket:
                rgb = await anyio.to_thread.run_sync(_decode, data, name, served.pixels, served.max_seconds)
                ticket.pixels = rgb.shape[0] * rgb.shape[1]
                mask = await anyio.to_thread.run_sync(served.segmenter.predict, rgb, limiter=queue.limiter)
        except Busy as e:
            raise HTTPException(503, e.detail, headers={"Retry-After": str(e.retry_after)}) from None
        except DataError as e:
            raise HTTPException(413 if "too large" in str(e) else 400, str(e)) from None
        png = palette_png(mask, served.palette)
        latency = time.perf_counter() - started
        if format == "png" and "application/json" not in request.headers.get("accept", ""):
            return Response(png, media_type="image/png", headers={"X-Inference-Seconds": f"{latency:.4f}"})
        return JSONResponse(_shares_json(mask, png, served.classes, served.palette, latency))


def _check_upload(image: UploadFile, data: bytes, max_upload_bytes: int) -> None:
    """413 / 415 / 400 for an upload that is too large, not an image type, or empty."""
    if len(data) > max_upload_bytes:
        raise HTTPException(413, f"{image.filename}: larger than the limit of {max_upload_bytes} bytes")
    ctype = (image.content_type or "").split(";")[0].strip().lower()
    if ctype not in IMAGE_TYPES:
        raise HTTPException(
            415,
            f"{image.filename}: content type {ctype or 'none'} is not an image type; "
            f"send one of {', '.join(IMAGE_TYPES)}",
        )
    if not data:
        raise HTTPException(400, f"{image.filename}: empty file")


def _shares_json(mask: np.ndarray, png: bytes, classes: list[str], palette: np.ndarray, latency: float) -> dict:
    """The JSON answer: size, the classes present with their colour, pixels and share, and the mask PNG."""
    counts = np.bincount(mask.ravel(), minlength=len(palette))
    total = max(1, int(counts.sum()))
    shares = [
        {
            "index": int(i),
            "name": classes[i],
            "color": palette[i].tolist(),
            "pixels": int(counts[i]),
            "share": counts[i] / total,
        }
        for i in np.argsort(-counts)
        if counts[i] > 0
    ]
    return {
        "width": int(mask.shape[1]),
        "height": int(mask.shape[0]),
        "classes": shares,
        "mask_png": base64.b64encode(png).decode("ascii"),
        "seconds": latency,
    }


def _decode(data: bytes, name: str, max_pixels: int, max_seconds: float) -> np.ndarray:
    try:
        return read_rgb(io.BytesIO(data), name=name, limit=max_pixels)
    except DataError as e:  # the limit here is the model's time, not FCNSEG_MAX_PIXELS
        hint = f"(about {max_seconds:g} s of this model here; fcnseg serve --max-seconds raises it)"
        raise DataError(str(e).replace("(FCNSEG_MAX_PIXELS raises it)", hint)) from None
