"""``Segmenter``: image in (PIL, NumPy, tensor, path), label map out, at the image's own size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import DataError
from ..io import read_image
from ..preprocessing import CAFFE_VOC, Preprocessing

__all__ = ["Segmenter"]


class Segmenter:
    """Segment images with a model or a checkpoint.

    Args:
        model_or_checkpoint: an FCN, or the path of an fcnseg ``.safetensors`` checkpoint.
        preprocessing: overrides the checkpoint's (default for a bare model: the reference's Caffe VOC).
        device: where to run.
        dtype: autocast dtype of PyTorch forward passes (``torch.bfloat16`` …; ``torch.float32``: none):
            forces the ``torch`` engine with that autocast; None (default) leaves the choice to ``engine``.
        engine: ``"auto"`` (the default, unless the environment variable ``FCNSEG_ENGINE`` names another):
            the fastest engine × precision for this machine and image size, measured on first use and
            cached beside the checkpoint (:mod:`fcnseg.inference.auto`); or one name of
            :data:`fcnseg.inference.engines.ENGINES` (``"torch"`` is fp32 PyTorch, the reference).
        source: the checkpoint file exported engines keep their graphs beside (default: the checkpoint
            this Segmenter loaded; None for a bare model: PyTorch engines only).
        calibration: preprocessed ``(C, H, W)`` images for int8 calibration and the accuracy guard of
            reduced precisions (default: the checkpoint's own training images when they load).
        reloadable: the model's weights are ``source``'s own tensors (always so when this Segmenter loaded the
            checkpoint): while only exported engines run, the fp32 weights are dropped and read back when
            needed (:class:`~fcnseg.inference.auto.AutoEngine`).

    Example:
        >>> import fcnseg
        >>> seg = Segmenter(fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16))
        >>> seg.predict(np.zeros((37, 41, 3), np.uint8)).shape
        (37, 41)
    """

    def __init__(
        self,
        model_or_checkpoint: nn.Module | str | Path,
        *,
        preprocessing: Preprocessing | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        engine: str | None = None,
        source: str | Path | None = None,
        calibration: Callable[[], list[torch.Tensor]] | None = None,
        reloadable: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.classes: list[str] = []
        self.info: Any = None  # the checkpoint's CheckpointInfo (what it was trained on), when loaded from one
        if isinstance(model_or_checkpoint, nn.Module):
            self.model = model_or_checkpoint
            pre = preprocessing or CAFFE_VOC
        else:
            from ..runtime.checkpoint import load_checkpoint, preprocessing_of

            self.model, info = load_checkpoint(model_or_checkpoint)
            self.classes, self.info = info.classes, info
            pre = preprocessing or preprocessing_of(info)
            reloadable = source is None or Path(source) == Path(model_or_checkpoint)
            source = model_or_checkpoint if source is None else source
            calibration = calibration or _training_images(info)
        self.preprocessing = pre
        self.model = self.model.to(self.device).eval()
        from .auto import AutoEngine

        self.engine = AutoEngine(self.model, device=self.device, source=Path(source) if source else None,
                                 calibration=calibration, engine="torch" if dtype is not None else engine,
                                 reloadable=reloadable)  # fmt: skip

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
            x = torch.stack([self.preprocessing(torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1))))
                             for r in rgbs[start:end]]).to(self.device, non_blocking=True)  # fmt: skip
            out = self._run(x)
            labels = (
                {k: v.argmax(1).to(torch.uint8).cpu().numpy() for k, v in out.items()}
                if isinstance(out, dict)
                else {"": out.argmax(1).to(torch.uint8).cpu().numpy()}
            )
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
        """Label map ``(H, W)`` uint8 (or a dict per head) for one image of any size.

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
                return {k: v.argmax(0).to(torch.uint8).cpu().numpy() for k, v in p.items()}
            return p.argmax(0).to(torch.uint8).cpu().numpy()
        s = self.scores(rgb)
        if isinstance(s, dict):
            return {k: v.argmax(0).to(torch.uint8).cpu().numpy() for k, v in s.items()}
        return s.argmax(0).to(torch.uint8).cpu().numpy()


def _training_images(info: Any) -> Callable[[], list[torch.Tensor]]:
    """Eight of the checkpoint's training images, loaded when first asked for (int8 calibration, accuracy guard)."""

    def load() -> list[torch.Tensor]:
        from ..runtime.calibration import training_images

        return training_images(info, 8)

    return load
