"""The paper's Table 2 in miniature: pretrain a classifier, convolutionalize it, fine-tune FCNs.

Steps (each with fcnseg's public API; ``--scale paper`` runs the same code at full size):

1. Pretrain a VGG16-pattern classifier (13 convolutions in 5 blocks with ceil-mode pools, then fully
   connected ``fc6``/``fc7``/``fc8``, at ``width`` × VGG16's channels) on SyntheticShapes's
   classification variant (one large object near the centre, framed like an ImageNet photograph) —
   the ImageNet step (``classifier.py``).
2. Convolutionalize it into the FCNs (:func:`fcnseg.get_model` with ``backbone_weights``: ``fc6``'s
   ``Linear(C·7·7 → F)`` becomes a 7×7 convolution) and fine-tune on the segmentation variant with
   :func:`fcnseg.train.fit`, each net with the same number of steps: FCN-32s-fixed (only
   the score layer learns), FCN-32s, FCN-16s (from the 32s), FCN-8s (from the 16s), FCN-8s at-once
   (from the classifier), FCN-8s from scratch (no pretraining); and, as controls at an equal total
   budget, FCN-32s and the at-once FCN-8s continued for a second and third stage (``recipe.py``, ``run.py``).
3. Evaluate every net's final weights on the same held-out scenes (split ``test``, never seen in
   training or model selection) with the engine's evaluator: the four metrics and boundary mean IU (pixels
   within ``band`` px of an object edge), and write the report (``report.py``): ``RESULTS.md``,
   ``results/miniature.json``, learning curves and a qualitative grid (image | truth | 32s | 16s | 8s).
"""

from ..heldout import evaluate_held_out, skip_effect
from ..scale import Scale, overrides
from .classifier import VGGClassifier, pretrain_classifier
from .recipe import NETS, PAPER, SCALES, stages
from .report import results_markdown, write_report
from .run import run_miniature

__all__ = [
    "NETS",
    "PAPER",
    "SCALES",
    "Scale",
    "VGGClassifier",
    "evaluate_held_out",
    "overrides",
    "pretrain_classifier",
    "results_markdown",
    "run_miniature",
    "skip_effect",
    "stages",
    "write_report",
]
