"""``Segmenter``: image in (PIL, NumPy, tensor, path), label map out, at the image's own size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..data.classes import default_classes
from ..errors import ConfigError, DataError, ModelError
from ..io import read_image
from ..preprocessing import CAFFE_VOC, Preprocessing, preset
from ..runtime.checkpoint import CheckpointInfo, preprocessing_of
from ..runtime.domain import warn_if_synthetic
from ..runtime.model_source import ModelSpec, open_model
from ..weights.resolve import resolve_spec
from .tiling import label_map

__all__ = ["Segmenter", "SegmenterOptions"]


@dataclass(frozen=True)
class SegmenterOptions:
    """How a :class:`Segmenter` runs, as a record the command line and Ray workers pass: ``Segmenter(spec,
    **asdict(options))``. ``dtype``: ``auto`` (the engine's choice), ``fp32``, ``bf16`` or ``fp16`` (PyTorch with
    that autocast); ``calibration``: a folder of images for int8 and the accuracy guard (default: the checkpoint's
    training images)."""

    device: str = "auto"
    engine: str | None = None
    dtype: str = "auto"
    calibration: str | None = None
    calibration_count: int = 32


class Segmenter:
    """Segment images with a model, a checkpoint, or a registry name with weights.

    Args:
        source: an FCN; the path of an fcnseg ``.safetensors`` checkpoint; pretrained weights by full name
            (``"fcn8s_vgg16.voc"``, ``"hf://OWNER/NAME"``); a registry name with ``weights``; or a
            :class:`~fcnseg.runtime.model_source.ModelSpec`. A checkpoint (or pretrained weights) brings its classes,
            preprocessing and training config (:attr:`info`); a bare model has numbered classes.
        weights: with a registry name: registry weights (``"voc"``: fetched and cached on first use,
            :mod:`fcnseg.weights`) or a weights file (``num_classes`` read from it unless given).
        preprocessing: a :class:`~fcnseg.preprocessing.Preprocessing` or preset name; overrides the checkpoint's
            (default for a bare model: what its trunk's weights expect, ``model.preprocessing`` — Caffe VOC for the
            reference trunks, ImageNet for torchvision's and for nets given torchvision weights).
        device: ``auto`` (CUDA when present, the command line's default too), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: autocast of PyTorch forward passes (``torch.bfloat16`` or ``"bf16"`` …; ``"auto"``/None: the
            engine's choice): a set dtype forces the ``torch`` engine with that autocast.
        engine: ``"auto"`` (the default, unless the environment variable ``FCNSEG_ENGINE`` names another), or one
            name of :data:`fcnseg.inference.engines.ENGINES` (``"torch"`` is fp32 PyTorch, the reference).
        calibration: a folder of images, or a callable returning preprocessed ``(C, H, W)`` tensors, for int8
            calibration and the accuracy guard of reduced precisions (default: the checkpoint's training images).
        calibration_count: how many images to take from the folder or the training set.

    Example:
        >>> import fcnseg
        >>> seg = Segmenter(fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16), device="cpu")
        >>> seg.predict(np.zeros((37, 41, 3), np.uint8)).shape
        (37, 41)
    """

    def __init__(
        self,
        source: nn.Module | str | Path | ModelSpec,
        *,
        weights: str | Path | None = None,
        num_classes: int | None = None,
        preprocessing: Preprocessing | str | None = None,
        device: str | torch.device = "auto",
        dtype: torch.dtype | str | None = None,
        engine: str | None = None,
        calibration: str | Path | Callable[[], list[torch.Tensor]] | None = None,
        calibration_count: int = 32,
    ) -> None:
        from ..runtime.hardware import resolve_device

        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.dtype = _dtype(dtype)
        self.info: CheckpointInfo | None = None  # what the checkpoint says it was trained on (None: a bare model)
        file: Path | None = None
        if isinstance(source, nn.Module):
            self.model, self.classes = source, list(default_classes(int(getattr(source, "num_classes", 0) or 0)))
        else:
            spec = source if isinstance(source, ModelSpec) else ModelSpec.of(source, weights, num_classes=num_classes)
            opened = open_model(resolve_spec(spec))  # registry and Hub weights: their cached checkpoint
            self.model, self.info, file = opened.model, opened.info, opened.file
            self.classes = list(opened.info.classes)
            warn_if_synthetic(self.info, file)  # once: a synthetic-shapes model paints shapes on photographs
        channels = int(getattr(self.model, "in_channels", 3))
        if channels != 3:  # predict, serve and the API feed (H, W, 3) RGB: refuse now, not at every image
            raise ModelError(
                f"{file or type(self.model).__name__}: the model takes {channels} input channels (RGB-D, or streams "
                "such as colour + HHA); a Segmenter feeds RGB images (3 channels). Evaluate it on its dataset instead"
            )
        if isinstance(preprocessing, str):
            preprocessing = preset(preprocessing)
        default = getattr(self.model, "preprocessing", CAFFE_VOC)  # a bare model: what its trunk's weights expect
        self.preprocessing = preprocessing or (preprocessing_of(self.info) if self.info else default)
        self.model = self.model.to(self.device).eval()
        from .auto import AutoEngine

        self.engine = AutoEngine(
            self.model,
            device=self.device,
            source=file,
            calibration=_calibration(calibration, self.info, calibration_count, self.preprocessing),
            engine="torch" if self.dtype is not None else engine,
            reloadable=file is not None,
        )

    def expect(self, forward_passes: int | None) -> None:
        """Say how many forward passes are still to come (a batch job's images, × 2 with mirror TTA …): the
        ``auto`` engine builds a faster engine only when they repay it (None: unknown, as in a server)."""
        expect = getattr(self.engine, "expect", None)
        if expect is not None:
            expect(forward_passes)

    def _as_rgb(self, image: Any) -> np.ndarray:
        if isinstance(image, (str, Path)):
            return read_image(image)
        if isinstance(image, Image.Image):
            return np.asarray(image.convert("RGB"))
        if isinstance(image, torch.Tensor):
            arr = image.detach().cpu()
            if arr.dim() == 3 and arr.shape[0] in (1, 3):
                arr = arr.permute(1, 2, 0)
            image = arr.numpy()
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise DataError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
        return arr

    def _run(self, x: torch.Tensor) -> Any:
        """The engine's scores for ``x`` (autocast PyTorch when a dtype is set), in fp32."""
        if self.dtype in (None, torch.float32):
            return self.engine(x)
        with torch.autocast(self.device.type, dtype=self.dtype):
            out = self.model(x)
        return {k: v.float() for k, v in out.items()} if isinstance(out, dict) else out.float()

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor, flip: bool) -> dict[str, torch.Tensor]:
        out = self._run(x)
        out = out if isinstance(out, dict) else {"": out}
        probs = {k: v.softmax(1) for k, v in out.items()}
        if flip:  # mirror test-time augmentation: average with the flipped image's (flipped back) output
            mirrored = self._run(x.flip(-1))
            mirrored = mirrored if isinstance(mirrored, dict) else {"": mirrored}
            probs = {k: (v + mirrored[k].softmax(1).flip(-1)) / 2 for k, v in probs.items()}
        return probs

    @torch.inference_mode()
    def probabilities(self, image: Any, *, flip: bool = False, scales: tuple[float, ...] = (1.0,)) -> Any:
        """Class probabilities ``(K, H, W)`` (or a dict per head), averaged over mirror / scales if asked."""
        rgb = self._as_rgb(image)
        x = (
            self.preprocessing(torch.from_numpy(np.array(rgb.transpose(2, 0, 1), order="C")))
            .unsqueeze(0)
            .to(self.device)
        )
        h, w = x.shape[-2:]
        small = [s for s in scales if int(h * s) < 1 or int(w * s) < 1]
        if small:
            raise DataError(
                f"scale {small[0]:g} makes this {w}×{h} image {int(w * small[0])}×{int(h * small[0])} pixels; "
                "use larger scales for small images"
            )
        total: dict[str, torch.Tensor] = {}
        for s in scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            for k, p in self._forward(xs, flip).items():
                p = p if s == 1.0 else F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
                total[k] = total.get(k, 0) + p[0] / len(scales)
        return total if self._multi else total[""]

    @property
    def _multi(self) -> bool:
        return bool(getattr(self.model, "multi_head", False))

    @torch.inference_mode()
    def scores(self, image: Any) -> torch.Tensor | dict[str, torch.Tensor]:
        """Raw class scores ``(K, H, W)`` (or a dict per head) for one image."""
        rgb = self._as_rgb(image)
        x = self.preprocessing(torch.from_numpy(np.array(rgb.transpose(2, 0, 1), order="C")))
        out = self._run(x.unsqueeze(0).to(self.device))
        return {k: v[0] for k, v in out.items()} if isinstance(out, dict) else out[0]

    @torch.inference_mode()
    def predict_many(self, images: list[Any]) -> list[np.ndarray | dict[str, np.ndarray]]:
        """Label maps of several images: consecutive images of the same size run as one batch.

        Each result equals :meth:`predict` of that image alone (whole images, never padded together).
        """
        rgbs = [self._as_rgb(image) for image in images]
        results: list[Any] = []
        start = 0
        while start < len(rgbs):
            end = start + 1
            while end < len(rgbs) and rgbs[end].shape == rgbs[start].shape:
                end += 1
            x = torch.stack(
                [
                    self.preprocessing(torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1))))
                    for r in rgbs[start:end]
                ]
            ).to(self.device, non_blocking=True)
            out = self._run(x)
            labels = {k: label_map(v, 1) for k, v in out.items()} if isinstance(out, dict) else {"": label_map(out, 1)}
            for i in range(end - start):
                results.append({k: v[i] for k, v in labels.items()} if self._multi else labels[""][i])
            start = end
        return results

    def predict(
        self,
        image: Any,
        *,
        tile: int | None = None,
        overlap: int = 128,
        flip: bool = False,
        scales: tuple[float, ...] = (1.0,),
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Label map ``(H, W)`` (or a dict per head) for one image of any size: uint8 for up to 256 classes,
        uint16 beyond (:func:`label_map`: never wrapped).

        Args:
            tile: score in overlapping ``tile × tile`` windows (memory bounded by the tile) when the image
                is larger than the tile; ``None`` scores the whole image at once.
            overlap: window overlap in pixels, blended.
            flip, scales: test-time augmentation (mirror; multi-scale, e.g. ``(0.75, 1.0, 1.25)``).
        """
        rgb = self._as_rgb(image)
        if tile is not None and max(rgb.shape[:2]) > tile:
            if self._multi:
                raise DataError("tiled inference supports single-head models")
            from .tiling import tiled_labels

            return tiled_labels(
                lambda crop: self.probabilities(crop, flip=flip, scales=scales), rgb, tile=tile, overlap=overlap
            )
        if flip or scales != (1.0,):
            p = self.probabilities(rgb, flip=flip, scales=scales)
            if isinstance(p, dict):
                return {k: label_map(v, 0) for k, v in p.items()}
            return label_map(p, 0)
        s = self.scores(rgb)
        if isinstance(s, dict):
            return {k: label_map(v, 0) for k, v in s.items()}
        return label_map(s, 0)


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``"bf16"`` … → the torch dtype; ``"auto"``/None → None (the engine's choice)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    words = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if dtype not in words:
        raise ConfigError(f"dtype {dtype!r}: one of {', '.join(words)}")
    return words[dtype]


def _calibration(
    calibration: Any, info: CheckpointInfo | None, n: int, pre: Preprocessing
) -> Callable[[], list[torch.Tensor]] | None:
    """The calibration images, loaded when first asked for: a folder's, a callable's, or the checkpoint's training
    set (int8 calibration and the accuracy guard of reduced precisions)."""
    if callable(calibration):
        return calibration
    if calibration is None and (info is None or not info.config):
        return None

    def load() -> list[torch.Tensor]:
        from ..runtime.calibration import calibration_images

        return calibration_images(info, calibration, n, pre=pre)

    return load
