"""The sizes and budgets of the experiments (:class:`Scale`), the demo's recipe, and the training config of one net.

Shared by the demo, the miniature Table 2 and the paper experiment; plain data (no torch), so the command line
can list the scales without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["CLASSIFIER", "CLASSIFIER_SCALE", "DEMO", "FINE_TUNE", "Scale", "overrides"]


@dataclass(frozen=True, kw_only=True)
class Scale:
    """Sizes and budgets of one run of the experiment (``cls_*``: classifier pretraining; ``seg_*``: fine-tuning)."""

    width: float  # VGG16 channel multiplier
    pad100: bool  # the reference's 100-px input padding (False: memory-lean mode, same alignment)
    cls_size: int  # classifier input (≥ 193 gives VGG16's 7×7 pool5)
    cls_images: int
    cls_epochs: int
    cls_batch: int
    cls_lr: float
    seg_size: int
    seg_images: int
    seg_steps: int  # per net (per stage for the staged nets)
    seg_batch: int
    optimizer: str  # fine-tuning solver: adamw (CPU budgets) | sgd (the reference)
    seg_lr: float
    val_images: int  # learning-curve validation scenes
    test_images: int  # held-out evaluation scenes
    eval_every: int
    band: int  # boundary band half-width in px


#: the shipped classifier's recipe (1/16 width: 0.53M parameters, 1.1 MB in float16)
CLASSIFIER_SCALE = Scale(
    width=0.0625,
    pad100=False,
    cls_size=224,
    cls_images=6000,
    cls_epochs=3,
    cls_batch=32,
    cls_lr=3e-3,
    seg_size=224,
    seg_images=0,
    seg_steps=0,
    seg_batch=8,
    optimizer="adamw",
    seg_lr=1e-3,
    val_images=0,
    test_images=0,
    eval_every=0,
    band=3,
)
#: shipped name of that classifier (``model.backbone_weights: fcnseg:…``)
CLASSIFIER = "shapes-vgg16-w1_16"
#: the demo's fine-tuning: 160-px scenes, AdamW steps of 8 images at lr 3e-3 (FCN-32s after 1600 steps, held-out
#: mean IU: 0.163 at 1e-3, 0.197 at 3e-3, 1e-2 diverged to all-background); ``seg_steps`` is FCN-32s's count.
#: 6000 training scenes, not 2000: FCN-8s's 1600 steps from the same FCN-16s reached 0.489 on 4000, 0.442 on 2000
DEMO = replace(
    CLASSIFIER_SCALE,
    seg_size=160,
    seg_images=6000,
    seg_steps=1500,
    seg_lr=3e-3,
    val_images=40,
    test_images=100,
    eval_every=250,
)
#: fine-tuning overrides beyond the miniature experiment's: no dropout (a net of 256-channel fc6/fc7 fine-tuned
#: for minutes learns faster without it: FCN-32s at 3e-3 0.238 vs 0.197 held-out mean IU after 1600 steps)
FINE_TUNE = ("model.dropout=0",)


def overrides(scale: Scale, device: str, name: str) -> list[str]:
    """The ``--set`` overrides that train net ``name`` at ``scale`` on ``device``."""
    return [
        f"model.name={name}",
        f"model.width={scale.width}",
        f"model.pad100={str(scale.pad100).lower()}",
        "data.name=synthetic",
        f"data.options={{n: {scale.seg_images}, size: {scale.seg_size}, cache: true}}",
        f"data.val_options={{n: {scale.val_images}}}",
        "data.preprocessing=imagenet",
        "data.flip=true",
        f"data.batch_size={scale.seg_batch}",
        f"train.optimizer={scale.optimizer}",
        f"train.lr={scale.seg_lr}",
        "train.momentum=0.9",
        "train.weight_decay=0.0005",
        "train.schedule=poly",
        "train.normalize=true",
        f"train.max_iter={scale.seg_steps}",
        f"train.eval_every={scale.eval_every}",
        f"train.checkpoint_every={scale.seg_steps}",
        f"train.log_every={max(1, scale.eval_every // 5)}",
        f"train.device={device}",
        "eval.grid_images=0",
    ]
