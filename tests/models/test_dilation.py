"""Shift-and-stitch as filter rarefaction (``output_stride`` 16, 8 on the VGG16 nets, paper §3.2).

The dilated trunk (a pool at stride 1, every later filter dilated by the stride removed) computes
exactly what shift-and-stitch computes: the stride-32 trunk's fc7 map at every shift of the input by a
multiple of ``output_stride``, interleaved. Checked here cell for cell, with the phase taken from the
two nets' grids (``model.grids``), and through config, engine, checkpoint and weight transfer.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import fcnseg
from fcnseg.config import load_config
from fcnseg.errors import CheckpointError, ConfigError, ModelError
from fcnseg.models.backbones.vgg16 import vgg16_trunk
from fcnseg.runtime.checkpoint import CheckpointInfo, load_checkpoint, model_kwargs, save_checkpoint
from fcnseg.runtime.checkpoint_meta import check_metadata, check_shapes
from fcnseg.train.build import build_model, init_backbone, init_from

W = 1 / 16
STRIDES = [16, 8]


def _fc7(model: fcnseg.models.FCN, x: Tensor) -> Tensor:
    """The trunk's deepest tap (drop7; dropout is the identity in eval mode)."""
    for _, layer in model.trunk_layers(model.streams[0]):
        x = layer(x)
    return x


def _pair(pad100: bool, output_stride: int, *, biases: bool = True) -> tuple[nn.Module, nn.Module]:
    """A stride-32 FCN-32s with random weights and the dilated one carrying the same weights (eval mode)."""
    plain = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, pad100=pad100).eval()
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.1) if biases else p.zero_()
    dilated = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, pad100=pad100, output_stride=output_stride)
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("upscore")}  # ×32 vs ×16/×8 kernel
    missing, unexpected = dilated.load_state_dict(state, strict=False)
    assert missing == ["upscore.weight"] and not unexpected
    return plain, dilated.eval()


def _phase(plain: nn.Module, dilated: nn.Module) -> int:
    """Index of the dilated map's cell that sits on the stride-32 map's cell 0 (from the grids)."""
    shift = (plain.grids[32].origin - dilated.grids[32].origin) / dilated.grids[32].stride
    assert shift.denominator == 1 and shift >= 0, shift
    return int(shift)


@pytest.mark.parametrize("pad100", [True, False])
@pytest.mark.parametrize("output_stride", STRIDES)
def test_the_dilated_map_subsampled_at_its_phase_is_the_stride_32_map(output_stride: int, pad100: bool) -> None:
    plain, dilated = _pair(pad100, output_stride)
    f, phase = 32 // output_stride, _phase(plain, dilated)
    with torch.no_grad():
        for h, w in [(32, 32), (33, 47), (61, 96), (96, 95), (40, 71)]:
            x = torch.randn(1, 3, h, w)
            coarse, dense = _fc7(plain, x), _fc7(dilated, x)
            sub = dense[..., phase::f, phase::f]
            assert sub.shape == coarse.shape, (h, w, sub.shape, coarse.shape)  # ceil mode's border windows too
            assert torch.allclose(sub, coarse, atol=1e-5), (h, w, (sub - coarse).abs().max())


@pytest.mark.parametrize("output_stride", STRIDES)
def test_the_dilated_map_is_the_stitched_output_of_every_shift(output_stride: int) -> None:
    """Run the stride-32 trunk on the input shifted right/down by (rx, ry) × output_stride px, interleave.

    Shifting means prepending zero pixels; with zero biases and the reference's 100-px canvas that only
    extends the canvas, so every cell is comparable, borders included. (Without pad100 the prepended
    pixels meet each layer's own padding differently; the subsampling identity above covers that mode.)
    """
    plain, dilated = _pair(True, output_stride, biases=False)
    f, phase, s = 32 // output_stride, _phase(plain, dilated), output_stride
    assert phase == f - 1  # shifts 0 … f − 1 fill the dilated map's phases f − 1 … 0
    with torch.no_grad():
        for h, w in [(64, 64), (33, 47)]:
            x = torch.randn(1, 3, h, w)
            dense = _fc7(dilated, x)
            filled = torch.zeros(dense.shape[-2:], dtype=torch.int64)
            for ry in range(f):
                for rx in range(f):
                    shifted = _fc7(plain, F.pad(x, (rx * s, 0, ry * s, 0)))
                    cells = dense[..., phase - ry :: f, phase - rx :: f]
                    assert cells.shape == shifted.shape, (h, w, ry, rx)
                    assert torch.allclose(cells, shifted, atol=1e-5), (h, w, ry, rx)
                    filled[phase - ry :: f, phase - rx :: f] += 1
            assert bool((filled == 1).all())  # each dilated cell is exactly one shift's cell


@pytest.mark.parametrize("pad100", [True, False])
@pytest.mark.parametrize("output_stride", STRIDES)
def test_any_input_size_gives_a_same_size_aligned_map(output_stride: int, pad100: bool) -> None:
    model = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, pad100=pad100, output_stride=output_stride)
    assert model.grids[32].stride == output_stride and model.output_stride == output_stride
    assert model.upsample_kernels == {"upscore": 2 * output_stride}  # half-cell offset: k = 2f
    assert model.crop_offsets == {"score": 19 if pad100 else 16}  # whole pixels, from the geometry
    assert isinstance(model.crop_offsets["score"], int)
    model.eval()
    with torch.no_grad():
        for h in range(1, 98, 4):
            for w in sorted({1, h, 50, 97}):
                assert model(torch.zeros(1, 3, h, w)).shape == (1, 2, h, w), (h, w)


def test_the_layers_are_the_papers_rarefaction() -> None:
    os16 = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, pad100=False, output_stride=16)
    assert (os16.pool4.stride, os16.pool5.stride, os16.conv5_1.dilation) == (2, 1, (1, 1))
    assert os16.fc6.dilation == (2, 2) and os16.fc6.padding == (6, 6)
    os8 = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, output_stride=8)
    assert (os8.pool3.stride, os8.pool4.stride, os8.pool5.stride, os8.pool5.dilation) == (2, 1, 1, 2)
    assert os8.conv5_3.dilation == (2, 2) and os8.conv5_3.padding == (2, 2) and os8.conv1_1.padding == (100, 100)
    assert os8.fc6.dilation == (4, 4) and os8.fc6.padding == (0, 0)
    lean8 = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, pad100=False, output_stride=8)
    assert lean8.fc6.padding == (12, 12) and lean8.conv1_1.padding == (1, 1)


def test_a_dilated_net_trains() -> None:
    """Gradients reach every layer through the stride-1 pools (the zero-padded one at output stride 8 too)."""
    model = fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, pad100=False, output_stride=8).train()
    nn.init.normal_(model.score_fr.weight, std=0.1)  # zero-initialised score layer would stop the gradient
    model(torch.randn(2, 3, 40, 37)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
    assert float(model.conv1_1.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("name", "output_stride"),
    [("fcn16s_vgg16", 16), ("fcn16s_vgg16", 8), ("fcn8s_vgg16", 16), ("fcn8s_vgg16", 8), ("fcn8s_atonce_vgg16", 8)],
)
def test_skip_nets_refuse_dilation_in_one_line(name: str, output_stride: int) -> None:
    """A skip at or above the output stride has no coarser map to refine: dilation is for FCN-32s."""
    with pytest.raises(ModelError, match="output_stride") as e:
        fcnseg.get_model(name, num_classes=2, width=W, output_stride=output_stride)
    assert "\n" not in str(e.value) and "pool4" in str(e.value)


@pytest.mark.parametrize("name", ["fcn8s_resnet18", "fcn32s_alexnet", "fcn32s_googlenet"])
def test_other_families_say_output_stride_is_for_vgg16(name: str) -> None:
    with pytest.raises(ModelError, match="output_stride applies to VGG16 nets") as e:
        fcnseg.get_model(name, num_classes=2, width=0.125, output_stride=16)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [12, 4, 64, True, "16", 16.0])
def test_bad_output_strides_are_model_errors(bad: object) -> None:
    with pytest.raises(ModelError, match="output_stride must be 32, 16 or 8"):
        fcnseg.get_model("fcn32s_vgg16", num_classes=2, width=W, output_stride=bad)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="output_stride must be 32, 16 or 8"):
        vgg16_trunk(width=W, output_stride=bad)  # type: ignore[arg-type]


def _config(*extra: str):
    base = ["model.name=fcn32s_vgg16", f"model.width={W}", "model.num_classes=3", "model.pad100=false"]
    return load_config(None, [*base, *extra])


def test_config_engine_and_checkpoint_keep_the_output_stride(tmp_path) -> None:
    cfg = _config("model.output_stride=16")
    assert cfg.model.output_stride == 16
    model = build_model(cfg, None).eval()  # type: ignore[arg-type]  # num_classes given: no dataset needed
    assert model.output_stride == 16 and model.build_args["output_stride"] == 16
    path = save_checkpoint(tmp_path / "os16", model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model)))
    loaded, info = load_checkpoint(path)
    assert info.model_kwargs["output_stride"] == 16 and loaded.build_args == model.build_args
    assert loaded.grids == model.grids and loaded.fc6.dilation == (2, 2)
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))
    plain = build_model(_config(), None)  # type: ignore[arg-type]
    assert "output_stride" not in plain.build_args  # stride-32 metadata is what older fcnseg wrote and reads
    assert plain.output_stride == 32


def test_bad_values_are_one_line_errors_of_fcnseg() -> None:
    for bad in ("12", "sixteen"):
        with pytest.raises(ConfigError, match=r"model\.output_stride") as e:
            _config(f"model.output_stride={bad}")
        assert "\n" not in str(e.value)
    meta = {"arch": "fcn32s_vgg16", "model_kwargs": {"num_classes": 3, "output_stride": 12}}
    with pytest.raises(CheckpointError, match=r"model_kwargs\.output_stride: expected 32, 16 or 8") as e:
        check_metadata(meta, "x.safetensors")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"cannot be built.*output_stride") as e:
        check_shapes("fcn16s_vgg16", {"num_classes": 3, "width": W, "output_stride": 16}, {}, "x.safetensors")
    assert "\n" not in str(e.value)


def test_shipped_classifier_weights_load_into_a_dilated_net() -> None:
    """model.backbone_weights: the classifier's trunk lands unchanged; the dilated map is still its stride-32 map."""
    weights = "model.backbone_weights=fcnseg:shapes-vgg16-w1_16"
    nets = {}
    for os_ in (32, 8):
        cfg = _config(weights, f"model.output_stride={os_}")
        nets[os_] = build_model(cfg, None).eval()  # type: ignore[arg-type]
        report = init_backbone(nets[os_], cfg)
        assert report is not None and len(report.copied) == 28 and report.coerced == ["fc6.weight", "fc7.weight"]
        assert not report.missing
    plain, dilated = nets[32], nets[8]
    trunk = [k for k in plain.state_dict() if k.startswith(("conv", "fc"))]
    assert all(torch.equal(plain.state_dict()[k], dilated.state_dict()[k]) for k in trunk)
    x = torch.randn(1, 3, 50, 50)
    with torch.no_grad():
        coarse, dense = _fc7(plain, x), _fc7(dilated, x)
    phase = _phase(plain, dilated)
    assert torch.allclose(dense[..., phase::4, phase::4], coarse, atol=1e-5)


def test_a_stride_32_checkpoint_initialises_a_dilated_net(tmp_path) -> None:
    """init_from: trunk and score_fr copied unchanged; only the ×32 upsampling (another kernel) is left."""
    plain = build_model(_config(), None)  # type: ignore[arg-type]
    path = save_checkpoint(tmp_path / "os32", plain, CheckpointInfo(arch=plain.arch, model_kwargs=model_kwargs(plain)))
    dilated = build_model(_config("model.output_stride=16"), None)  # type: ignore[arg-type]
    report = init_from(dilated, path)
    assert report.dropped == ["upscore.weight"] and not report.missing
    own, theirs = dilated.state_dict(), plain.state_dict()
    assert all(torch.equal(own[k], theirs[k]) for k in theirs if k != "upscore.weight")
