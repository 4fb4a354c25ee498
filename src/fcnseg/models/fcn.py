"""The fully convolutional network with the skip architecture (FCN-32s, FCN-16s, FCN-8s).

Reader's path through one forward pass of FCN-8s on VGG16 (K classes, input N×3×H×W)::

    trunk:  conv1_1 (pad 100) … pool3 ─► (N, 256, ~(H+198)/8)   tap 8
                               … pool4 ─► (N, 512, ~(H+198)/16)  tap 16
                               … drop7 ─► (N, 4096, ~(H+198)/32 − 6) tap 32
    score_fr(tap32)                        (N, K, h32, w32)
    upscore2 (×2, k4)  + crop(score_pool4(tap16), 5)  = fuse_pool4   (N, K, h16, w16)
    upscore_pool4 (×2, k4) + crop(score_pool3(tap8), 9) = fuse_pool3 (N, K, h8, w8)
    upscore8 (×8, k16) → crop 31 → (N, K, H, W)

Kernel sizes and crop offsets are not typed in: they follow from the trunk's layer geometry
(:mod:`fcnseg.models.geometry`) and reproduce the reference values (32s: 64 / 19; 16s: 4, 32 / 5, 27;
8s: 4, 4, 16 / 5, 9, 31; AlexNet 63 / 18) while aligning any other backbone exactly.

A dilated trunk (``output_stride`` 16 or 8, shift-and-stitch as filter rarefaction on VGG16) keeps
its taps' *level* names (32: ``drop7``, 16: ``pool4``, 8: ``pool3``) while their real strides become
``min(level, output_stride)``; the final upsampling factor, kernel and crop follow from the real grid
(FCN-32s at output stride 8: ``upscore`` ×8, k16). A skip needs a coarser map to refine, so a level
finer than 32 needs ``level < output_stride``: dilated nets are FCN-32s (FCN-16s or FCN-8s with
output stride 16 or 8 raise :class:`~fcnseg.errors.ModelError`).

Several *streams* (late fusion, e.g. NYUD colour + HHA) each run their own trunk on their own input
channels; their score maps are summed before upsampling. Several *heads* (multi-task, e.g. SIFT Flow
semantics + geometry) each have their own score and upsampling layers on the shared trunk. Layer
names are the reference's: ``score_fr``, ``score_pool4`` …, suffixed by the stream (``score_frcolor``)
and the head (``score_fr_sem``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..errors import ModelError
from .backbones.base import TrunkSpec
from .geometry import Grid, overlap, trace, upsample_kernel
from .layers import BilinearUpsample, crop, score_layer

__all__ = ["FCN", "SCORE_LAYER_NAMES", "Stream", "backbone_name"]

#: Reference names of the score layer at each stride.
SCORE_LAYER_NAMES = {32: "score_fr", 16: "score_pool4", 8: "score_pool3"}
_STEP_UP_NAMES = {16: "upscore2", 8: "upscore_pool4"}  # upsampling *to* this stride
_FINAL_UP_NAMES = {32: "upscore", 16: "upscore16", 8: "upscore8"}


class Stream(NamedTuple):
    """One input stream: its name (``""`` for a single stream), input channels, layer chain and taps."""

    name: str
    in_channels: int
    chain: tuple[str, ...]  # trunk layers in forward order, up to the last tap
    taps: dict[str, int]  # layer name → stride of the feature it yields


def backbone_name(stream: str) -> str:
    """Attribute holding a nested (torchvision) trunk: ``backbone``, or ``backbone_color`` for stream ``color``."""
    return "backbone" + (f"_{stream}" if stream else "")


@dataclass(frozen=True)
class _Step:
    """One skip fusion: upsample the running score ×factor, then add the cropped skip score."""

    stride: int
    up_name: str
    kernel: int
    factor: int
    crop_up: int
    crop_skip: int


class FCN(nn.Module):
    """A fully convolutional network: trunk(s), score layers at strides 32/16/8, upsampling and crops.

    Build it with :func:`fcnseg.get_model`; this constructor is for new backbones.

    Args:
        trunks: stream name → trunk. One stream is named ``""``; late fusion uses e.g. ``"color"``, ``"hha"``.
        heads: head name → number of classes. One head is named ``""`` (output is a tensor); otherwise
            the output is a dict keyed by head name.
        finest_stride: 32 (FCN-32s), 16 (FCN-16s) or 8 (FCN-8s): the finest *level* scored.
        learn_upsampling: learn the upsampling kernels (paper) instead of fixing them bilinear (release).
        skip_scales: stride → constant multiplying that tap before scoring (at-once FCN-8s: 16 → 0.01, 8 → 1e-4).
        arch: registry name, recorded for checkpoints.
    """

    def __init__(
        self,
        trunks: Mapping[str, TrunkSpec],
        heads: Mapping[str, int],
        *,
        finest_stride: int = 32,
        learn_upsampling: bool = False,
        skip_scales: Mapping[int, float] | None = None,
        arch: str = "",
    ) -> None:
        super().__init__()
        if finest_stride not in (32, 16, 8):
            raise ModelError(f"finest_stride must be 32, 16 or 8, got {finest_stride}")
        if not heads or any(k < 1 for k in heads.values()):
            raise ModelError(f"every head needs at least one class, got {dict(heads)}")
        self.arch = arch
        self.heads = dict(heads)
        self.strides = tuple(s for s in (32, 16, 8) if s >= finest_stride)
        self.skip_scales = dict(skip_scales or {})
        self.learn_upsampling = learn_upsampling
        self.multi_head = list(self.heads) != [""]
        self._streams: list[Stream] = []
        grids = None
        for stream, spec in trunks.items():
            missing = [s for s in self.strides if s not in spec.taps]
            if missing:
                raise ModelError(f"{spec.family} has no feature at stride {missing}; it supports {sorted(spec.taps)}")
            grids_s = self._register_trunk(stream, spec)
            if grids is not None and grids_s != grids:
                raise ModelError("late-fusion streams must share one geometry (use the same backbone)")
            grids = grids_s
            for s in self.strides:
                for head, k in self.heads.items():
                    self.add_module(self._score_name(s, stream, head), score_layer(spec.channels[s], k))
        assert grids is not None, "at least one trunk"
        self.family = next(iter(trunks.values())).family
        self.output_stride = int(grids[32].stride)
        self.grids = grids
        self._steps, final_kernel, self._final_crop = self._plan(grids)
        self._final_kernel = final_kernel
        self._final_factor = int(grids[self.strides[-1]].stride)
        for head, k in self.heads.items():
            for step in self._steps:
                self.add_module(
                    step.up_name + _hs(head), BilinearUpsample(k, step.kernel, step.factor, learnable=learn_upsampling)
                )
            up = BilinearUpsample(k, final_kernel, self._final_factor, learnable=learn_upsampling)
            self.add_module(_FINAL_UP_NAMES[finest_stride] + _hs(head), up)

    # -- construction -------------------------------------------------------------------------------
    def _register_trunk(self, stream: str, spec: TrunkSpec) -> dict[int, Grid]:
        first = spec.layers[spec.first_conv.split(".")[0]].get_submodule(".".join(spec.first_conv.split(".")[1:]))
        if spec.flat:
            for name, module in spec.layers.items():
                self.add_module(name + stream, module)
        else:
            self.add_module(backbone_name(stream), nn.ModuleDict(spec.layers))
        taps = {name: s for s, name in spec.taps.items() if s in self.strides}
        chain = tuple(spec.layers)
        last = max(chain.index(n) for n in taps)
        self._streams.append(Stream(stream, first.in_channels, chain[: last + 1], taps))
        grids, grid = {}, Grid()
        for name in chain[: last + 1]:
            grid = trace([spec.layers[name]], grid, skip=spec.skip_geometry)
            if name in taps:
                grids[taps[name]] = grid
        for s, g in grids.items():
            real = min(s, spec.output_stride)
            if g.stride != real:
                raise ModelError(f"{spec.family}: tap {spec.taps[s]} has stride {g.stride}, expected {real}")
        skips = [s for s in self.strides[1:] if s >= spec.output_stride]
        if skips:
            raise ModelError(
                f"{spec.family} at output_stride {spec.output_stride}: the skip from {spec.taps[skips[0]]} would sit "
                f"at stride {min(skips[0], spec.output_stride)}, no finer than the dilated score map; "
                "dilate an FCN-32s (e.g. fcn32s_vgg16) or keep output_stride 32"
            )
        return grids

    def _plan(self, grids: dict[int, Grid]) -> tuple[list[_Step], int, int]:
        """Kernels, factors and crops of each fusion and of the final upsampling, from the real grids."""
        steps, grid = [], grids[32]
        for s in self.strides[1:]:
            k = upsample_kernel(grid, grids[s])
            factor = int(grid.stride / grids[s].stride)
            up = grid.deconv(k, factor)
            crop_up, crop_skip, grid = overlap(up, grids[s])
            steps.append(_Step(s, _STEP_UP_NAMES[s], k, factor, crop_up, crop_skip))
        k = upsample_kernel(grid, Grid())
        out = grid.deconv(k, int(grid.stride))
        crop_out, crop_in, _ = overlap(out, Grid())
        if crop_in:
            raise ModelError(f"{self.family}: the score map starts {crop_in} px inside the image; add input padding")
        return steps, k, crop_out

    def _score_name(self, stride: int, stream: str, head: str) -> str:
        return SCORE_LAYER_NAMES[stride] + stream + _hs(head)

    # -- introspection --------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes of the single head (raises for multi-head nets; see ``heads``)."""
        if self.multi_head:
            raise AttributeError(f"multi-head FCN: classes per head are {self.heads}")
        return self.heads[""]

    @property
    def in_channels(self) -> int:
        """Input channels: the sum over streams (e.g. 6 for colour + HHA late fusion)."""
        return sum(s.in_channels for s in self._streams)

    @property
    def crop_offsets(self) -> dict[str, int]:
        """Crop offsets of the reference's Crop layers, keyed by the layer that is cropped.

        For FCN-8s on VGG16: ``{"score_pool4": 5, "score_pool3": 9, "score": 31}``.
        """
        out: dict[str, int] = {}
        for step in self._steps:
            if step.crop_skip:
                out[SCORE_LAYER_NAMES[step.stride]] = step.crop_skip
            if step.crop_up or not step.crop_skip:
                out[step.up_name] = step.crop_up
        out["score"] = self._final_crop
        return out

    @property
    def upsample_kernels(self) -> dict[str, int]:
        """Kernel size of every upsampling layer, keyed by its reference name (without head suffix)."""
        out = {s.up_name: s.kernel for s in self._steps}
        out[_FINAL_UP_NAMES[self.strides[-1]]] = self._final_kernel
        return out

    def score_layer_names(self) -> list[str]:
        """Names of all score layers (zero-initialised; the new layers of staged training)."""
        return [self._score_name(s, st.name, h) for s in self.strides for st in self._streams for h in self.heads]

    @property
    def streams(self) -> list[Stream]:
        """The input streams (one, or several for late fusion)."""
        return list(self._streams)

    def trunk_layers(self, stream: Stream) -> list[tuple[str, nn.Module]]:
        """(name, module) of ``stream``'s trunk layers in forward order, wherever they are registered."""
        nested = self._modules.get(backbone_name(stream.name))
        if isinstance(nested, nn.ModuleDict):
            return [(name, nested[name]) for name in stream.chain]
        return [(name, getattr(self, name + stream.name)) for name in stream.chain]

    # -- forward --------------------------------------------------------------------------------------
    def _features(self, stream: Stream, x: Tensor) -> dict[int, Tensor]:
        feats: dict[int, Tensor] = {}
        for name, layer in self.trunk_layers(stream):
            x = layer(x)
            if name in stream.taps:
                feats[stream.taps[name]] = x
        return feats

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        """Score every pixel.

        Args:
            x: ``(N, C, H, W)`` images, any ``H, W >= 1``; ``C`` = the sum of the streams' channels.

        Returns:
            ``(N, K, H, W)`` scores aligned with the input, or a dict of them, one per head.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ModelError(f"{self.arch or 'FCN'} expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        parts = torch.split(x, [s.in_channels for s in self._streams], dim=1) if len(self._streams) > 1 else (x,)
        feats = [(s.name, self._features(s, part)) for s, part in zip(self._streams, parts, strict=True)]
        out = {head: self._head(head, feats, height, width) for head in self.heads}
        return out if self.multi_head else out[""]

    def _score(self, stride: int, head: str, feats: list[tuple[str, dict[int, Tensor]]]) -> Tensor:
        scale = self.skip_scales.get(stride)
        total: Tensor | None = None
        for stream, f in feats:
            inp = f[stride] * scale if scale is not None else f[stride]
            s = getattr(self, self._score_name(stride, stream, head))(inp)
            total = s if total is None else total + s
        assert total is not None
        return total

    def _head(self, head: str, feats: list[tuple[str, dict[int, Tensor]]], height: int, width: int) -> Tensor:
        hs = _hs(head)
        score = self._score(32, head, feats)  # (N, K, h32, w32)
        for step in self._steps:
            up = getattr(self, step.up_name + hs)(score)  # (N, K, ~2·h, ~2·w)
            skip = self._score(step.stride, head, feats)
            h = torch.sym_min(up.shape[-2] - step.crop_up, skip.shape[-2] - step.crop_skip)  # symbolic under export
            w = torch.sym_min(up.shape[-1] - step.crop_up, skip.shape[-1] - step.crop_skip)
            score = crop(up, step.crop_up, h, w) + crop(skip, step.crop_skip, h, w)
        out = getattr(self, _FINAL_UP_NAMES[self.strides[-1]] + hs)(score)
        if out.shape[-2] - self._final_crop < height or out.shape[-1] - self._final_crop < width:
            raise RuntimeError(f"{self.arch}: score map {tuple(out.shape[-2:])} does not cover input {(height, width)}")
        return crop(out, self._final_crop, height, width)  # (N, K, H, W)


def _hs(head: str) -> str:
    return f"_{head}" if head else ""
