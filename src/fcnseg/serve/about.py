"""What the served model knows, for the page to say: its classes, the data it was trained on, examples.

A model knows only the classes and the kind of images it was trained on; on anything else (a photograph
shown to a net trained on synthetic shapes) it still paints its own classes. So ``/api/info`` says what
that is, and when the data is fcnseg's synthetic shapes the page offers example images from that domain
(``/api/example/N.png``, scenes of the held-out ``test`` split, generated on request).
"""

from __future__ import annotations

import io
from typing import Any

from ..inference import Segmenter
from ..runtime.domain import trained_on

__all__ = ["EXAMPLES", "example_png", "model_card"]

#: how many "try an example" images the page offers
EXAMPLES = 4


def model_card(segmenter: Segmenter) -> dict[str, Any]:
    """``{"dataset", "description", "image_size", "step", "examples"}`` from the checkpoint's record."""
    info = getattr(segmenter, "info", None)
    data = (info.config.get("data", {}) if info is not None else {}) or {}
    name, description = trained_on(info)
    size = (data.get("options") or {}).get("size")
    card: dict[str, Any] = {
        "dataset": name,
        "description": description,
        "image_size": size,
        "step": info.step if info is not None else None,
        "examples": [],
    }
    if name == "synthetic":
        card["examples"] = [f"/api/example/{i}.png" for i in range(EXAMPLES)]
    return card


def example_png(card: dict[str, Any], index: int) -> bytes | None:
    """Held-out scene ``index`` of the model's own synthetic domain as PNG bytes; None when there is none."""
    if card.get("dataset") != "synthetic" or not 0 <= index < EXAMPLES:
        return None
    from PIL import Image

    from ..data import SyntheticShapes

    image, _, _ = SyntheticShapes(EXAMPLES, int(card.get("image_size") or 128), "test", seed=1).generate(index)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
