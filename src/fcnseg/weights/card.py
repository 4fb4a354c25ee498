"""A folder to share a checkpoint on the Hugging Face Hub: the checkpoint and a model card.

``fcnseg export --format hub`` writes ``model.safetensors`` (the checkpoint as it is) and ``README.md``: YAML front
matter the Hub reads (``library_name``, ``tags``, ``datasets``, ``license``, and the metrics in its ``model-index``
form) and a body saying what the model is, its classes, the preprocessing it expects, and how to load it. Pushing
is the user's ``huggingface_hub`` call (``upload_folder``); ``--weights hf://OWNER/NAME`` loads it back.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..runtime.checkpoint import CheckpointInfo, preprocessing_of, read_info
from .hub import HUB_FILE

__all__ = ["model_card", "write_hub_folder"]

_METRICS = {
    "mean_iu": ("mean_iou", "mean IU"),
    "pixel_accuracy": ("pixel_accuracy", "pixel accuracy"),
    "mean_accuracy": ("mean_accuracy", "mean accuracy"),
    "fw_iu": ("frequency_weighted_iou", "frequency-weighted IU"),
    "geo_accuracy": ("geometric_accuracy", "geometric pixel accuracy"),
}


def _data(info: CheckpointInfo) -> dict[str, Any]:
    """The dataset of a checkpoint: its training data's section, or the one pretrained weights were published on."""
    return info.config.get("data") or (info.config.get("weights") or {}).get("eval_data") or {}


def _results(info: CheckpointInfo, measured: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The card's model-index results: metrics measured here (``fcnseg eval``'s metrics.json), else the
    published ones of registry weights."""
    weights = info.config.get("weights") or {}
    data = _data(info)
    if measured:
        flat = measured if "mean_iu" in measured else next(iter(measured.values()), {})
        values = {k: 100 * float(v) for k, v in flat.items() if k in _METRICS and isinstance(v, (int, float))}
        dataset = {"name": data.get("name", "evaluation set"), "type": data.get("name", "custom")}
        source = {"name": "fcnseg eval"}
    else:
        values = {k: float(v) for k, v in (weights.get("metrics") or {}).items() if k in _METRICS}
        dataset = {"name": weights.get("dataset") or data.get("name", ""), "type": data.get("name", "custom")}
        source = {"name": weights.get("metrics_source") or "published", "url": weights.get("url", "")}
        if info.best_mean_iu is not None and not values:
            values = {"mean_iu": 100 * float(info.best_mean_iu)}
            source = {"name": "fcnseg train (best validation mean IU)"}
    if not values:
        return []
    if data.get("val_split"):
        dataset["split"] = data["val_split"]
    metrics = [
        {"type": _METRICS[k][0], "name": f"{_METRICS[k][1]} (%)", "value": round(v, 2)} for k, v in values.items()
    ]
    task = {"type": "image-segmentation", "name": "Semantic Segmentation"}
    return [{"task": task, "dataset": dataset, "metrics": metrics, "source": {k: v for k, v in source.items() if v}}]


def model_card(info: CheckpointInfo, name: str, *, measured: dict[str, Any] | None = None) -> str:
    """The ``README.md`` of a Hub repository ``name`` (``OWNER/NAME``) holding checkpoint ``info``."""
    weights = info.config.get("weights") or {}
    data = _data(info)
    pre = preprocessing_of(info)
    front: dict[str, Any] = {
        "library_name": "fcnseg",
        "pipeline_tag": "image-segmentation",
        "tags": ["fcnseg", "fcn", "semantic-segmentation", "image-segmentation", "pytorch", "safetensors", info.arch],
    }
    if weights.get("licence"):
        front["license"] = "other"
        front["license_name"] = weights["licence"]
    if data.get("name"):
        front["datasets"] = [data["name"]]
    results = _results(info, measured)
    if results:
        front["model-index"] = [{"name": name.split("/")[-1], "results": results}]
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    classes = ", ".join(f"{i} {c}" for i, c in enumerate(info.classes))
    channels = "BGR" if pre.bgr else "RGB"
    lines = [
        f"---\n{head}---",
        f"# {name.split('/')[-1]}",
        f"`{info.arch}`, a Fully Convolutional Network (Long, Shelhamer, Darrell) for semantic segmentation, "
        f"as an [fcnseg](https://pypi.org/project/fcnseg/) checkpoint (`{HUB_FILE}`: weights and the metadata "
        "that rebuilds the model).",
        "## Use",
        f"```bash\npip install 'fcnseg[hub]'\nfcnseg predict --weights hf://{name} photo.jpg --out masks/\n```",
        f'```python\nimport fcnseg\nseg = fcnseg.Segmenter("hf://{name}")\nlabels = seg.predict("photo.jpg")  '
        f'# (H, W) class indices\nmodel = fcnseg.get_model("{info.arch}", weights="hf://{name}")\n```',
        "## Preprocessing",
        f"{channels} in 0-255, multiplied by {pre.scale:g}, minus the mean {list(pre.mean)}, divided by "
        f"{list(pre.std)} (per channel, in {channels} order); no resizing: any image size works. fcnseg applies it "
        "(the checkpoint records it).",
        f"## Classes ({len(info.classes)})",
        classes,
    ]
    if weights:
        lines += ["## Provenance", _provenance(weights)]
    if info.step:
        trained = f"{info.step} steps with fcnseg {info.version}; best validation mean IU {info.best_mean_iu}."
        lines += ["## Training", trained]
    return "\n\n".join(lines) + "\n"


def _provenance(weights: dict[str, Any]) -> str:
    download = weights.get("download") or {}
    parts = [
        f"Converted by fcnseg from `{weights.get('file')}` ({weights.get('url')}; SHA-256 "
        f"`{download.get('sha256', '?')}`), registry entry `{weights.get('name')}`.",
        f"Published figures: {json.dumps(weights.get('metrics') or {})} on {weights.get('dataset') or '?'} "
        f"({weights.get('metrics_source') or 'source unknown'}).",
        f"Licence: {weights.get('licence') or 'see the source'}.",
    ]
    return " ".join(parts)


def write_hub_folder(
    checkpoint: str | Path, out: str | Path, *, name: str | None = None, metrics: str | Path | None = None
) -> Path:
    """Write ``out/`` with ``checkpoint`` as ``model.safetensors`` and its model card ``README.md``.

    Args:
        name: the Hub repository the card names (``OWNER/NAME``; default ``OWNER/`` + the folder's name).
        metrics: an ``fcnseg eval`` ``metrics.json`` to put in the card (default: published or training figures).

    Raises:
        ConfigError: ``out`` exists and is not empty, or ``metrics`` is not a metrics file.
        CheckpointError: ``checkpoint`` is not an fcnseg checkpoint.
    """
    out, checkpoint = Path(out), Path(checkpoint)
    info = read_info(checkpoint)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: exists and is not an empty folder; give a new folder for the Hub repository")
    measured = _metrics_file(metrics) if metrics else None
    card = model_card(info, name or f"OWNER/{out.name}", measured=measured)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.mkdir(parents=True)
        shutil.copyfile(checkpoint, tmp / HUB_FILE)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _metrics_file(path: str | Path) -> dict[str, Any]:
    from ..json_safe import load_json

    data = load_json(path, "metrics.json of fcnseg eval", limit=1 << 24, error=ConfigError)  # regular, bounded
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a metrics.json of fcnseg eval (a {type(data).__name__})")
    return data
