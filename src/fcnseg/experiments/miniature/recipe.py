"""The miniature experiment's recipe: its scales (:class:`~fcnseg.experiments.scale.Scale`), the nets and how each
starts, and the paper's numbers to compare with."""

from __future__ import annotations

from collections import OrderedDict

from ..scale import Scale

__all__ = ["NETS", "PAPER", "SCALES", "stages"]


SCALES: dict[str, Scale] = {
    "smoke": Scale(
        width=0.0625,
        pad100=False,
        cls_size=200,
        cls_images=32,
        cls_epochs=1,
        cls_batch=8,
        cls_lr=2e-3,
        seg_size=48,
        seg_images=64,
        seg_steps=4,
        seg_batch=4,
        optimizer="adamw",
        seg_lr=1e-3,
        val_images=4,
        test_images=6,
        eval_every=2,
        band=2,
    ),
    "small": Scale(
        width=0.125,
        pad100=False,
        cls_size=224,
        cls_images=8000,
        cls_epochs=3,
        cls_batch=32,
        cls_lr=3e-3,
        seg_size=224,
        seg_images=4000,
        seg_steps=1500,
        seg_batch=8,
        optimizer="adamw",
        seg_lr=1e-3,
        val_images=60,
        test_images=300,
        eval_every=250,
        band=3,
    ),
    "paper": Scale(
        width=1.0,
        pad100=True,
        cls_size=224,
        cls_images=100_000,
        cls_epochs=30,
        cls_batch=64,
        cls_lr=1e-3,
        seg_size=500,
        seg_images=20_000,
        seg_steps=24_000,
        seg_batch=1,
        optimizer="sgd",
        seg_lr=1e-4,
        val_images=500,
        test_images=1000,
        eval_every=4000,
        band=5,
    ),
}

#: net key → (registry name, initialisation, what the paper calls it)
NETS: OrderedDict[str, tuple[str, str, str]] = OrderedDict(
    [
        ("fcn32s_fixed", ("fcn32s_vgg16", "classifier, frozen", "FCN-32s-fixed")),
        ("fcn32s", ("fcn32s_vgg16", "classifier", "FCN-32s")),
        ("fcn16s", ("fcn16s_vgg16", "fcn32s", "FCN-16s")),
        ("fcn8s", ("fcn8s_vgg16", "fcn16s", "FCN-8s")),
        # step-matched controls: FCN-32s trained on for as many stages as FCN-16s and FCN-8s had, so that the
        # skips' gain is not confused with the staged nets' extra training
        ("fcn32s_x2", ("fcn32s_vgg16", "fcn32s", "FCN-32s, 2 stages (control)")),
        ("fcn32s_x3", ("fcn32s_vgg16", "fcn32s_x2", "FCN-32s, 3 stages (control)")),
        ("fcn8s_atonce", ("fcn8s_atonce_vgg16", "classifier", "FCN-8s at-once")),
        # at-once trained on for as many stages as the staged FCN-8s had: PAMI's comparison at an equal budget
        ("fcn8s_atonce_x2", ("fcn8s_atonce_vgg16", "fcn8s_atonce", "FCN-8s at-once, 2 stages")),
        ("fcn8s_atonce_x3", ("fcn8s_atonce_vgg16", "fcn8s_atonce_x2", "FCN-8s at-once, 3 stages")),
        ("fcn8s_scratch", ("fcn8s_vgg16", "random", "FCN-8s from scratch")),
    ]
)

#: the paper's Table 2 (seg11valid; pixel acc., mean acc., mean IU, f.w. IU) and the release's at-once net
PAPER: dict[str, dict[str, float] | str] = {
    "fcn32s_fixed": {"pixel_accuracy": 83.0, "mean_accuracy": 59.7, "mean_iu": 45.4, "fw_iu": 72.0},
    "fcn32s": {"pixel_accuracy": 89.1, "mean_accuracy": 73.3, "mean_iu": 59.4, "fw_iu": 81.4},
    "fcn16s": {"pixel_accuracy": 90.0, "mean_accuracy": 75.7, "mean_iu": 62.4, "fw_iu": 83.0},
    "fcn8s": {"pixel_accuracy": 90.3, "mean_accuracy": 75.9, "mean_iu": 62.7, "fw_iu": 83.2},
    "fcn32s_x2": "not in the paper: FCN-32s trained as long as FCN-16s",
    "fcn32s_x3": "not in the paper: FCN-32s trained as long as FCN-8s",
    "fcn8s_atonce": "release: 65.4 mean IU (staged FCN-8s 65.5)",
    "fcn8s_atonce_x2": "not in the paper: at-once trained as long as FCN-16s",
    "fcn8s_atonce_x3": "release: 65.4 (PAMI trains it as long as the staged nets together)",
    "fcn8s_onestage": "not in the paper (staged); the from-scratch net's pretrained twin",
    "fcn8s_scratch": "not reported (the paper fine-tunes classifiers)",
}


def stages(key: str) -> int:
    """How many fine-tuning stages of ``seg_steps`` a net has had, counting those it was initialised from."""
    init = NETS[key][1]
    return 1 + (stages(init) if init in NETS else 0)
