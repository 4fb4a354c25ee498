"""``fcnseg serve``: a web page to try a model and an HTTP API (FastAPI on uvicorn)."""

from .app import DEFAULT_CHECKPOINT, create_app

__all__ = ["DEFAULT_CHECKPOINT", "create_app"]
