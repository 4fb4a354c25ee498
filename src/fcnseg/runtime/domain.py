"""What a model knows: the data it was trained on, as its checkpoint records it.

A model knows only the classes and the kind of images it was trained on; on anything else (a photograph shown
to a net trained on synthetic shapes) it still paints its own classes. :func:`trained_on` names that data;
:func:`warn_if_synthetic` says once, through the ``fcnseg`` logger, when a model of fcnseg's synthetic shapes is
about to segment images of any kind (``predict``, a ``Segmenter``; ``serve`` says it on its page), once per process
and model.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["DESCRIPTIONS", "SYNTHETIC_NOTE", "trained_on", "warn_if_synthetic"]

log = logging.getLogger("fcnseg")

#: dataset name (``data.name`` of the training config) → what its images are
DESCRIPTIONS = {
    "synthetic": "fcnseg's synthetic shapes (SyntheticShapes): 1–6 shapes — disks, squares, triangles, stars, "
    "crosses, rings, lines, hexagons — on noisy or textured backgrounds; no photographs",
    "voc": "PASCAL VOC photographs (people, animals, vehicles, indoor objects)",
    "sbd": "PASCAL VOC photographs with the SBD annotations",
    "siftflow": "SIFT Flow outdoor scenes",
    "nyudv2": "NYU Depth v2 indoor scenes",
    "pascal_context": "PASCAL-Context photographs (whole-scene labels)",
    "cityscapes": "Cityscapes street scenes",
    "ade20k": "ADE20K scenes",
    "coco": "COCO-style photographs",
    "folder": "a folder of the user's own images and masks",
}
#: said once per model of the synthetic domain
SYNTHETIC_NOTE = (
    "this model was trained on fcnseg's synthetic shapes only: on photographs it paints shapes that are not there "
    "(it knows disks, squares, triangles, stars, crosses, rings, lines and hexagons on textured backgrounds)"
)


def trained_on(info: Any) -> tuple[str | None, str]:
    """``(dataset name, what its images are)`` from a checkpoint's :class:`~fcnseg.runtime.CheckpointInfo`
    (``(None, "not recorded")`` for bare weights or a checkpoint without a training config)."""
    config = getattr(info, "config", None) or {}
    name = (config.get("data") or {}).get("name") if isinstance(config, dict) else None
    if not name:
        return None, "not recorded"
    return name, DESCRIPTIONS.get(name, f"the {name} dataset")


#: the models this process has already warned about (by their file)
_warned: set[str] = set()


def warn_if_synthetic(info: Any, source: Any = None) -> bool:
    """Warn that a synthetic-shapes model paints shapes on photographs, once per process and model file
    (``source``); True when it warned now."""
    if trained_on(info)[0] != "synthetic" or str(source) in _warned:
        return False
    _warned.add(str(source))
    log.warning(SYNTHETIC_NOTE)
    return True
