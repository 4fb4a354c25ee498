"""The paper experiment's recipe: sizes and budgets, every training run by key, the parts that use them,
and the paper's own numbers to put beside ours."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..scale import CLASSIFIER, DEMO, Scale

__all__ = [
    "CONVERGED",
    "PAPER_NUMBERS",
    "PARTS",
    "PART_NAMES",
    "REFERENCE_LR",
    "RUNS",
    "SCALES",
    "PaperScale",
    "Run",
    "reference_lr",
]


@dataclass(frozen=True, kw_only=True)
class PaperScale:
    """One size of the experiment: the demo's fine-tuning recipe (``seg``), trained to a validation plateau.

    Every run evaluates on ``seg.val_images`` validation scenes each ``eval_every`` steps and stops when its
    validation mean IU has not risen by ``min_delta`` in ``patience`` evaluations (``train.early_stop``), or at
    its step cap (``cap``; reported when hit); it is scored with its best checkpoint on ``seg.test_images``
    held-out scenes, once per seed of ``seeds``.
    """

    seg: Scale  # the modern recipe (AdamW, batch ``seg.seg_batch``, poly schedule over ``cap`` steps)
    seeds: tuple[int, ...]  # training seeds (train.seed): the order images are drawn in, the augmentations
    cap: int  # modern recipe: step cap per run (the poly schedule ends there)
    eval_every: int  # modern recipe: steps between validation evaluations
    patience: int  # evaluations without a gain of min_delta that end a run
    min_delta: float
    ref_cap: int  # reference solver (batch 1): step cap per run; as many images as a modern run's cap
    ref_eval_every: int
    sweep: tuple[int, ...]  # reference solver: learning-rate multipliers tried on FCN-32s (1: the rule itself)
    sampling_batch: int  # loss-sampling part: the whole-image batch (p = 0.5 and 0.25 raise it by 1/p)
    timing_repeats: int  # forward passes timed per net in the dilation part
    classifier: str = "fcnseg:" + CLASSIFIER
    #: modern recipe: no run stops before this step (the reference solver's: × its batch). Added after 5 of the
    #: converged scale's first runs (class balancing, jitter: FCN-32s without mirroring) stopped at step 1750 still
    #: on the starting plateau — every pixel background, mean IU 0.0996 from step 250 — flat, not converged.
    min_steps: int = 0

    def plateau_keys(self, reference: bool = False, stages: int = 1) -> list[str]:
        """The ``--set`` keys that train a run to its plateau (``stages``: its cap in units of one run's)."""
        cap, every = (self.ref_cap, self.ref_eval_every) if reference else (self.cap, self.eval_every)
        least = self.min_steps * (self.ref_cap // self.cap if reference else 1)
        rule = f"patience: {self.patience}, min_delta: {self.min_delta}" + (f", min_steps: {least}" if least else "")
        return [
            f"train.max_iter={cap * stages}",
            f"train.eval_every={every}",
            f"train.checkpoint_every={every}",
            f"train.log_every={every}",
            f"train.early_stop={{{rule}}}",
        ]


#: 128-px scenes: FCN-8s learns per step as it does on the demo's 160-px ones (validation mean IU 0.37 vs 0.34 after
#: 2250 steps) for 1.6× less compute per step. The cap is twice the steps a net needs: with the poly schedule
#: ending at an 8000-step cap, FCN-8s was still gaining 0.005 per 500 steps at the cap (the decaying rate keeps
#: it climbing); ending at 16000, the rate decays slowly enough for the validation score to level off before it
#: (docs/results/paper-scale.txt).
#: Time, measured on the 2-core AMD EPYC (runs two at a time, one thread each): the 46 finished runs of the five
#: modern-recipe parts trained 7.45 h in all (median 8.1 min a run), 3.7 h of wall time — the "about 4 hours" this
#: scale was chosen for. The reference solver's part costs about as much again on its own (batch 1 over up to 8× the
#: steps: its FCN-32s runs took 18–41 min); it is kept at convergence rather than cut to fit, since a verdict on
#: an unconverged batch-1 SGD run is what training to the plateau replaced. The set finishes in pieces: every
#: run resumes from its checkpoint, finished ones are reused.
CONVERGED = replace(DEMO, seg_size=128, val_images=60, test_images=100)
SCALES: dict[str, PaperScale] = {
    "smoke": PaperScale(
        seg=replace(
            DEMO, seg_size=48, seg_images=16, seg_steps=2, seg_batch=2, val_images=3, test_images=3, eval_every=1
        ),
        seeds=(0,),
        cap=3,
        eval_every=1,
        patience=1,
        min_delta=0.0,
        ref_cap=3,
        ref_eval_every=1,
        sweep=(1, 100),
        sampling_batch=2,
        timing_repeats=1,
    ),
    "converged": PaperScale(
        seg=CONVERGED,
        seeds=(0, 1, 2),
        cap=16000,
        eval_every=250,
        patience=6,
        min_delta=0.005,
        ref_cap=16000 * DEMO.seg_batch,
        ref_eval_every=250 * DEMO.seg_batch,
        sweep=(1, 10, 100, 1000),
        sampling_batch=4,
        timing_repeats=15,
        min_steps=4000,
    ),
}

#: the reference release's learning rates (solvers of voc-fcn32s, 16s, 8s, 8s-atonce: summed loss, batch 1,
#: momentum 0.99, fixed); ``configs/voc-*.yaml`` hold the same values (a test checks it)
REFERENCE_LR = {"fcn32s_vgg16": 1e-10, "fcn16s_vgg16": 1e-12, "fcn8s_vgg16": 1e-14, "fcn8s_atonce_vgg16": 1e-10}
#: pixels per image the reference's rates were set for: PASCAL VOC's typical 500×375
REFERENCE_PIXELS = 500 * 375


def reference_lr(arch: str, size: int, multiplier: float = 1.0) -> float:
    """The rule: the reference's rate scaled for an equal step per pixel (the summed loss grows with the pixel
    count, so the rate shrinks by it), times ``multiplier`` (1 for the rule itself)."""
    return REFERENCE_LR[arch] * REFERENCE_PIXELS / (size * size) * multiplier


@dataclass(frozen=True)
class Run:
    """One training run: registry name, where it starts (``classifier`` or another run's key), its label and the
    ``--set`` overrides beyond the base recipe (``solver``: ``modern`` = the demo's AdamW, ``reference``)."""

    arch: str
    init: str
    label: str
    extra: tuple[str, ...] = ()
    solver: str = "modern"
    stages: int = 1  # budget in units of the part's steps
    batch: int | None = None  # None: the recipe's
    lr_multiplier: float | None = None  # reference solver; None: the part's chosen one (after the sweep)
    flip: bool = True
    meta: dict[str, object] = field(default_factory=dict, compare=False)


_NOFLIP = {"flip": False}
RUNS: dict[str, Run] = {
    # --- modern recipe, one stage from the classifier: dilation vs skips, upsampling, cues
    "fcn32s": Run("fcn32s_vgg16", "classifier", "FCN-32s"),
    "fcn32s_os16": Run("fcn32s_vgg16", "classifier", "FCN-32s dilated to stride 16", ("model.output_stride=16",)),
    "fcn32s_os8": Run("fcn32s_vgg16", "classifier", "FCN-32s dilated to stride 8", ("model.output_stride=8",)),
    "fcn16s": Run("fcn16s_vgg16", "classifier", "FCN-16s (skip)"),
    "fcn8s": Run("fcn8s_vgg16", "classifier", "FCN-8s (skips)"),
    "fcn32s_learned": Run(
        "fcn32s_vgg16", "classifier", "FCN-32s, learned upsampling", ("model.learn_upsampling=true",)
    ),
    "fcn8s_learned": Run("fcn8s_vgg16", "classifier", "FCN-8s, learned upsampling", ("model.learn_upsampling=true",)),
    "cue_fg": Run("fcn8s_vgg16", "classifier", "FCN-8s, background only", ("data.mask_cue=foreground",)),
    "cue_bg": Run("fcn8s_vgg16", "classifier", "FCN-8s, foreground only", ("data.mask_cue=background",)),
    "cue_both": Run("fcn8s_vgg16", "classifier", "FCN-8s, silhouettes only", ("data.mask_cue=both",)),
    # --- loss sampling (Fig. 5), class balancing, jitter: FCN-32s, no mirroring unless said
    "whole": Run("fcn32s_vgg16", "classifier", "whole images", flip=False, meta={"p": 1.0, "factor": 1}),
    "sample_50": Run(
        "fcn32s_vgg16",
        "classifier",
        "sampling p = 0.5",
        ("train.loss_sampling=0.5",),
        flip=False,
        meta={"p": 0.5, "factor": 2},
    ),
    "sample_25": Run(
        "fcn32s_vgg16",
        "classifier",
        "sampling p = 0.25",
        ("train.loss_sampling=0.25",),
        flip=False,
        meta={"p": 0.25, "factor": 4},
    ),
    "balanced": Run(
        "fcn32s_vgg16",
        "classifier",
        "class balancing (inverse frequency)",
        ("train.class_weights=inverse_frequency",),
        flip=False,
        meta={"factor": 1},
    ),
    "jitter": Run(
        "fcn32s_vgg16", "classifier", "mirroring + 32-px jitter", ("data.jitter=32",), flip=True, meta={"factor": 1}
    ),
    # --- the reference solver (summed loss, batch 1, SGD momentum 0.99, fixed rate by the rule)
    **{
        f"ref32_x{m}": Run("fcn32s_vgg16", "classifier", f"FCN-32s, rule × {m}", solver="reference", lr_multiplier=m)
        for m in (1, 10, 100, 1000)
    },
    "ref16": Run("fcn16s_vgg16", "ref32", "FCN-16s (from FCN-32s)", solver="reference"),
    "ref8": Run("fcn8s_vgg16", "ref16", "FCN-8s (from FCN-16s)", solver="reference"),
    "ref_atonce": Run(
        "fcn8s_atonce_vgg16", "classifier", "FCN-8s at-once (cap: 3 stages' steps)", solver="reference", stages=3
    ),
    # --- Table 2 (fcnseg experiment miniature --scale converged): the modern recipe, staged and at-once, to plateau
    "fcn32s_fixed": Run("fcn32s_vgg16", "classifier", "FCN-32s-fixed", ("model.freeze=backbone",)),
    "fcn16s_staged": Run("fcn16s_vgg16", "fcn32s", "FCN-16s"),
    "fcn8s_staged": Run("fcn8s_vgg16", "fcn16s_staged", "FCN-8s"),
    "fcn8s_atonce": Run("fcn8s_atonce_vgg16", "classifier", "FCN-8s at-once"),
    "fcn8s_scratch": Run("fcn8s_vgg16", "random", "FCN-8s from scratch"),
}

#: part → the runs it trains (``ref32`` in the reference part is the sweep's chosen FCN-32s)
PARTS: dict[str, tuple[str, ...]] = {
    "upper_bounds": (),
    "dilation_vs_skips": ("fcn32s", "fcn32s_os16", "fcn16s", "fcn32s_os8", "fcn8s"),
    "upsampling": ("fcn32s", "fcn32s_learned", "fcn8s", "fcn8s_learned"),
    "cues": ("fcn8s", "cue_fg", "cue_bg", "cue_both"),
    "loss_sampling": ("whole", "sample_50", "sample_25", "balanced", "jitter"),
    "reference_sgd": ("ref16", "ref8", "ref_atonce"),  # after the sweep
}
#: the parts in the order they run (``--part`` choices)
PART_NAMES = tuple(PARTS)

#: the paper's numbers each part is compared with (mean IU, %)
PAPER_NUMBERS: dict[str, object] = {
    "upper_bounds": {"32": 86.1, "16": 92.8, "8": 96.4, "source": "CVPR 2015 Appendix A, PASCAL VOC 2011 val"},
    "reference_sgd": {
        "fcn32s": 63.6,
        "fcn16s": 65.0,
        "fcn8s": 65.5,
        "fcn8s_atonce": 65.4,
        "source": "release, seg11valid (PAMI Table 3 / the release's README)",
    },
    "cues": {
        "reference": 84.8,
        "reference_fg": 81.0,
        "reference_bg": 19.8,
        "fg_only": 76.1,
        "bg_only": 37.8,
        "shape": 29.1,
        "source": "PAMI Table 8, foreground mean IU (background left out), FCN-32s",
    },
    "dilation_vs_skips": "CVPR §3.2 / §4.2: shift-and-stitch (dilation) was worse for its cost than skip fusion",
    "loss_sampling": "CVPR §4.3, Fig. 5: sampling no faster to converge per step, slower in wall time; class "
    "balancing unnecessary; mirroring and 32-px jitter no noticeable gain",
    "upsampling": "CVPR §3.3 learns the upsampling (initialised bilinear); the release fixes it: little difference",
}
