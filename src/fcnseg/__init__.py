"""fcnseg: Fully Convolutional Networks for Semantic Segmentation (Long, Shelhamer, Darrell) on PyTorch.

Public API: :func:`get_model`, :func:`list_models`, :func:`load_checkpoint`, :class:`Segmenter`.
"""

__version__ = "0.1.0"

from .inference import Segmenter
from .models import get_model, list_models
from .runtime.checkpoint import load_checkpoint

__all__ = ["Segmenter", "__version__", "get_model", "list_models", "load_checkpoint"]
