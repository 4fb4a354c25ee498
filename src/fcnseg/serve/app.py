"""The web app: a page (``/``), ``POST /api/segment``, ``GET /api/info`` and ``GET /healthz``.

Uploads are checked before any inference: the declared size (``Content-Length``) and the bytes actually
read against ``max_upload_bytes`` (413), the content type against the image types Pillow decodes (415),
and the decode itself, with Pillow's decompression-bomb guard and a pixel limit (400 / 413); each error
is a JSON ``{"detail": …}`` that says what is wrong. Inference runs in a worker thread, one image at a
time (a capacity limiter of 1: the network already uses every core), so the event loop keeps answering
``/healthz`` and queues requests instead of oversubscribing the CPU.
"""

from __future__ import annotations

import base64
import io
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..errors import DataError
from ..imageio import read_rgb
from ..inference import Segmenter
from ..io import palette_png
from ..viz import palette_for
from .about import example_png, model_card
from .limits import BodyLimit

__all__ = ["DEFAULT_CHECKPOINT", "IMAGE_TYPES", "create_app"]

#: the model the README's quick start (``fcnseg demo``) trains
DEFAULT_CHECKPOINT = Path("runs/demo/checkpoints/best.safetensors")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif")


def create_app(
    segmenter: Segmenter,
    *,
    name: str = "",
    max_upload_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 40_000_000,
) -> FastAPI:
    """A FastAPI app serving ``segmenter``.

    Args:
        name: what the page calls the model (default: its registry name).
        max_upload_bytes: larger uploads get 413.
        max_pixels: larger images (width × height) get 413 before inference.
    """
    model = segmenter.model
    if getattr(model, "multi_head", False):
        raise DataError("fcnseg serve shows single-head models (one label per pixel)")
    num_classes = int(model.num_classes)
    if num_classes > 256:
        raise DataError(f"fcnseg serve shows up to 256 classes (masks are 8-bit PNGs); this model has {num_classes}")
    classes = list(segmenter.classes) or [f"class_{i}" for i in range(num_classes)]
    palette = palette_for(classes)[:num_classes]
    card = model_card(segmenter)
    limiter = anyio.CapacityLimiter(1)
    title = name or getattr(model, "arch", "FCN")
    app = FastAPI(title="fcnseg", summary=f"FCN semantic segmentation: {title}", docs_url="/api/docs")
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
            "model": title,
            "classes": classes,
            "palette": palette.tolist(),
            "preprocessing": segmenter.preprocessing.to_dict(),
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": max_pixels,
            "trained_on": card,
        }

    @app.get("/api/example/{index}.png", include_in_schema=False)
    def example(index: int) -> Response:
        png = example_png(card, index)
        if png is None:
            raise HTTPException(404, f"no example {index}: examples exist for models trained on synthetic shapes")
        return Response(png, media_type="image/png")

    @app.post("/api/segment", response_model=None)
    async def segment(
        request: Request,
        image: Annotated[UploadFile, File(description="the image to segment (JPEG, PNG, WebP, BMP, TIFF, GIF)")],
        format: Annotated[str, Query(pattern="^(png|json)$", description="png: the mask; json: shares + mask")] = "png",
    ) -> Response:
        data = await image.read(max_upload_bytes + 1)  # BodyLimit has bounded the body already
        _check_upload(image, data, max_upload_bytes)
        started = time.perf_counter()
        try:
            rgb = await anyio.to_thread.run_sync(_decode, data, image.filename or "upload", max_pixels)
            mask = await anyio.to_thread.run_sync(segmenter.predict, rgb, limiter=limiter)
        except DataError as e:
            raise HTTPException(413 if "too large" in str(e) else 400, str(e)) from None
        png = palette_png(mask, palette)
        latency = time.perf_counter() - started
        if format == "png" and "application/json" not in request.headers.get("accept", ""):
            return Response(png, media_type="image/png", headers={"X-Inference-Seconds": f"{latency:.4f}"})
        return JSONResponse(_shares_json(mask, png, classes, palette, latency))

    # bodies over the limit (plus the multipart envelope) are refused before FastAPI spools them
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    return app


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


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    return read_rgb(io.BytesIO(data), name=name, limit=max_pixels)
