"""The ImageNet step in miniature: a VGG16-pattern classifier pretrained on object-framed synthetic images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ...data import SyntheticShapes
from ...models import vgg16_trunk
from ...preprocessing import IMAGENET
from ..scale import Scale

__all__ = ["VGGClassifier", "pretrain_classifier"]


class VGGClassifier(nn.Module):
    """VGG16's layer pattern at ``width``: the fcnseg trunk's convolutions, then fully connected layers.

    Trained with batch normalisation after each convolution and after fc6 and fc7 (a 16-layer VGG without
    it does not leave chance level within a CPU budget, and with it in the convolutions only it left chance
    in some seeds and not others), which :meth:`vgg_state_dict` folds into the layers' weights and biases —
    exact at inference — so the transferred net is plain VGG16. Parameter names are the
    Caffe ones (``conv1_1`` … ``fc6``, ``fc7``, ``fc8``), which :func:`fcnseg.models.load_backbone_weights`
    maps into an FCN.
    """

    def __init__(self, width: float, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        trunk = vgg16_trunk(width=width, pad100=False)  # conv1_1 pads 1, as VGG16 itself
        self.convs = [n for n in trunk.layers if not n.startswith(("fc", "relu6", "relu7", "drop"))]
        for name in self.convs:
            self.add_module(name, trunk.layers[name])
            if name.startswith("conv"):
                self.add_module(f"bn_{name}", nn.BatchNorm2d(trunk.layers[name].out_channels))
        c5, fc = trunk.channels[16], trunk.channels[32]
        self.fc6 = nn.Linear(c5 * 7 * 7, fc)
        self.fc7 = nn.Linear(fc, fc)
        self.bn_fc6, self.bn_fc7 = nn.BatchNorm1d(fc), nn.BatchNorm1d(fc)
        self.fc8 = nn.Linear(fc, num_classes)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.convs:
            x = getattr(self, name)(x)
            if name.startswith("conv"):
                x = getattr(self, f"bn_{name}")(x)
        if x.shape[-2:] != (7, 7):
            raise ValueError(f"VGGClassifier needs a 7×7 pool5 (inputs 193–224 px), got {tuple(x.shape[-2:])}")
        x = self.drop(torch.relu(self.bn_fc6(self.fc6(x.flatten(1)))))
        x = self.drop(torch.relu(self.bn_fc7(self.fc7(x))))
        return self.fc8(x)

    @torch.no_grad()
    def vgg_state_dict(self) -> dict[str, torch.Tensor]:
        """Caffe-named plain-VGG weights: each batch norm folded into the convolution before it."""
        out: dict[str, torch.Tensor] = {}
        for name in [*(n for n in self.convs if n.startswith("conv")), "fc6", "fc7"]:
            layer, bn = getattr(self, name), getattr(self, f"bn_{name}")
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out[f"{name}.weight"] = layer.weight * scale.view(-1, *[1] * (layer.weight.dim() - 1))
            out[f"{name}.bias"] = (layer.bias - bn.running_mean) * scale + bn.bias
        out["fc8.weight"], out["fc8.bias"] = self.fc8.weight.clone(), self.fc8.bias.clone()
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def _classification_set(scale: Scale, split: str, n: int) -> TensorDataset:
    """ImageNet-like images (one large object near the centre), generated once by parallel workers."""
    ds = SyntheticShapes(n, scale.cls_size, split, task="classification", framing="object")
    workers = min(2, os.cpu_count() or 1) if n >= 256 else 0
    xs, ys = zip(*DataLoader(ds, batch_size=64, num_workers=workers), strict=True)
    return TensorDataset(torch.cat(xs), torch.cat(ys))  # uint8: preprocessed per batch (4× less memory)


def pretrain_classifier(scale: Scale, out: Path, device: torch.device, log: Any = print) -> dict[str, Any]:
    """Train :class:`VGGClassifier` on the classification variant; save its state dict as safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    train = _classification_set(scale, "train", scale.cls_images)
    val = _classification_set(scale, "val", max(16, scale.cls_images // 10))
    model = VGGClassifier(scale.width, len(SyntheticShapes.classes)).to(device)
    steps = scale.cls_epochs * (len(train) // scale.cls_batch)
    opt = torch.optim.AdamW(model.parameters(), lr=scale.cls_lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, scale.cls_lr, total_steps=max(1, steps), pct_start=0.15)
    loader = DataLoader(train, batch_size=scale.cls_batch, shuffle=True, drop_last=True)
    curve = []
    for epoch in range(scale.cls_epochs):
        model.train()
        for x, y in loader:
            x, y = IMAGENET(x).to(device), y.to(device)
            flip = torch.rand(x.shape[0], device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = _accuracy(model, val, device)
        curve.append({"epoch": epoch + 1, "loss": float(loss.detach()), "val_accuracy": acc})
        log(f"  classifier epoch {epoch + 1}/{scale.cls_epochs}: loss {curve[-1]['loss']:.3f}, val accuracy {acc:.3f}")
    path = out / "classifier.safetensors"
    save_file(model.vgg_state_dict(), str(path))
    return {"path": str(path), "curve": curve, "val_accuracy": curve[-1]["val_accuracy"], "steps": steps}


@torch.inference_mode()
def _accuracy(model: nn.Module, ds: TensorDataset, device: torch.device) -> float:
    model.eval()
    x, y = ds.tensors
    pred = torch.cat([model(IMAGENET(x[i : i + 64]).to(device)).argmax(1).cpu() for i in range(0, len(x), 64)])
    return float((pred == y).float().mean())
