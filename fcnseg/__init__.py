"""fcnseg: Fully Convolutional Networks for Semantic Segmentation (Long, Shelhamer, Darrell) on PyTorch."""

from .models import get_model, list_models

__version__ = "0.1.0"
__all__ = ["__version__", "get_model", "list_models"]
