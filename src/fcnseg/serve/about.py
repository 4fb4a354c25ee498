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

__all__ = ["EXAMPLES", "example_png", "model_card"]

#: how many "try an example" images the page offers
EXAMPLES = 4
_DESCRIPTIONS = {
    "synthetic": "fcnseg's synthetic shapes (SyntheticShapes): 1–6 shapes — disks, squares, triangles, stars, "
    "crosses, rings, lines, hexagons — on noisy or textured backgrounds; no photographs",
    "voc": "PASCAL VOC photographs (people, animals, vehicles, indoor objects)",
    "sbd": "PASCAL VOC photographs with the SBD annotations",
    "siftflow": "SIFT Flow outdoor scenes",
    "nyudv2": "NYU Depth v2 indoor scenes",
    "pascal_context": "PASCAL-Context photographs (whole-scene labels)",
    "folder": "a folder of the user's own images and masks",
}


def model_card(segmenter: Segmenter) -> dict[str, Any]:
    """``{"dataset", "description", "image_size", "step", "examples"}`` from the checkpoint's record."""
    info = getattr(segmenter, "info", None)
    data = (info.config.get("data", {}) if info is not None else {}) or {}
    name = data.get("name")
    size = (data.get("options") or {}).get("size")
    card: dict[str, Any] = {
        "dataset": name,
        "description": _DESCRIPTIONS.get(name, "not recorded in the checkpoint") if name else "not recorded",
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
