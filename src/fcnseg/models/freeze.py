"""Freezing for fine-tuning: the whole trunk, or its layers up to a named one."""

from __future__ import annotations

from ..errors import ModelError
from .fcn import FCN

__all__ = ["freeze"]


def freeze(model: FCN, spec: str = "backbone") -> list[str]:
    """Stop gradients into part of the trunk; score and upsampling layers always stay trainable.

    Args:
        model: an fcnseg FCN.
        spec: ``"none"`` (everything trainable), ``"backbone"`` (the whole trunk), or ``"up_to:LAYER"``
            (trunk layers up to and including ``LAYER`` in forward order, e.g. ``up_to:conv4_3`` for
            VGG16, ``up_to:layer2`` for ResNet; applied to every stream).

    Returns:
        Names of the parameters now frozen. Frozen parameters fall out of the optimizer's groups.

    Raises:
        ModelError: an unknown spec or layer name (the message lists the trunk's layers).

    Example:
        >>> import fcnseg
        >>> net = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
        >>> frozen = freeze(net, "up_to:conv1_2")
        >>> frozen
        ['conv1_1.weight', 'conv1_1.bias', 'conv1_2.weight', 'conv1_2.bias']
    """
    per_stream = [model.trunk_layers(stream) for stream in model.streams]
    names = [n for n, _ in per_stream[0]]
    spec = spec.replace(" ", "")
    if spec == "none":
        count = 0
    elif spec == "backbone":
        count = len(names)
    elif spec.startswith("up_to:"):
        target = spec.removeprefix("up_to:")
        if target not in names:
            raise ModelError(f"freeze: no trunk layer {target!r} in {model.arch}; layers: {', '.join(names)}")
        count = names.index(target) + 1
    else:
        raise ModelError(f"freeze: expected 'none', 'backbone' or 'up_to:LAYER', got {spec!r}")
    frozen_modules = {id(m) for layers in per_stream for _, m in layers[:count]}
    frozen: list[str] = []
    for p in model.parameters():
        p.requires_grad_(True)
    for name, module in model.named_modules():
        if id(module) in frozen_modules:
            for pname, p in module.named_parameters():
                p.requires_grad_(False)
                frozen.append(f"{name}.{pname}")
    return frozen
