"""Loading a checkpoint builds the model once, shape-only, and takes the file's tensors: the same net as a full
build, no second copy of the weights, and nothing imported that prediction does not need."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import fcnseg
from fcnseg.runtime import checkpoint as checkpoint_mod
from fcnseg.runtime.checkpoint import CheckpointInfo, load_checkpoint, model_kwargs, save_checkpoint


@pytest.mark.parametrize(
    "arch, width",
    [("fcn8s_vgg16", 1 / 16), ("fcn32s_googlenet", 1 / 8), ("fcn8s_resnet18", 1 / 16), ("fcn32s_alexnet", 1 / 16)],
)
def test_loaded_net_is_the_saved_one(tmp_path, arch, width) -> None:
    torch.manual_seed(0)
    model = fcnseg.get_model(arch, num_classes=5, width=width).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    path = save_checkpoint(tmp_path / "m", model, CheckpointInfo(arch=arch, model_kwargs=model_kwargs(model)))
    loaded, _ = load_checkpoint(path)
    assert checkpoint_mod.materialized(loaded)
    assert all(p.requires_grad for p in loaded.parameters())  # trainable as a full build is
    assert {n for n, _ in loaded.named_buffers()} == {n for n, _ in model.named_buffers()}
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))


def test_weights_are_not_initialised_then_overwritten(tmp_path, monkeypatch, checkpoint) -> None:
    """The model is never built for real (its 134 M parameters initialised only to be replaced: 1.6 s of a
    2.5 s load for FCN-8s VGG16): the shape-only model checked against the header takes the weights."""
    real = checkpoint_mod.get_model

    def build(*a, **k):
        if torch.get_default_device().type != "meta":
            pytest.fail("the model was built for real")
        return real(*a, **k)

    monkeypatch.setattr(checkpoint_mod, "get_model", build)
    model, _ = load_checkpoint(checkpoint)
    assert checkpoint_mod.materialized(model)


def test_a_buffer_the_file_lacks_builds_the_model_for_real(monkeypatch, checkpoint) -> None:
    """Should a module derive a buffer at build time that the file does not hold, the shape-only model would keep it
    empty: the load then builds the model for real (same result)."""
    reference, _ = load_checkpoint(checkpoint)
    built = []
    real = checkpoint_mod.get_model
    monkeypatch.setattr(
        checkpoint_mod,
        "get_model",
        lambda *a, **k: (torch.get_default_device().type != "meta" and built.append(a)) or real(*a, **k),
    )
    monkeypatch.setattr(checkpoint_mod, "materialized", lambda m: False)
    model, _ = load_checkpoint(checkpoint)
    assert built == [("fcn8s_vgg16",)]
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference.eval()(x))


def test_infinite_weights_are_refused(tmp_path) -> None:
    for value in (float("inf"), float("-inf")):
        model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16)
        with torch.no_grad():
            model.score_fr.bias[1] = value
        path = save_checkpoint(tmp_path / "inf", model, CheckpointInfo(model.arch, model_kwargs(model)))
        with pytest.raises(fcnseg.errors.CheckpointError, match=r"score_fr\.bias holds NaN or infinite values"):
            load_checkpoint(path)


def test_predict_imports_no_torchvision_dynamo_scipy_or_matplotlib(tmp_path, checkpoint) -> None:
    """What predict does not need it does not import: torchvision (every torchvision model and the detection ops:
    ≈ 1 s), torch._dynamo (≈ 1 s, pulled in by some ops on the meta device), SciPy, matplotlib."""
    from PIL import Image

    Image.new("RGB", (40, 30), (90, 120, 30)).save(tmp_path / "a.png")
    code = (
        "import sys\nfrom fcnseg.cli.main import main\n"
        f"code = main(['predict', '--checkpoint', {str(checkpoint)!r}, {str(tmp_path / 'a.png')!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--engine', 'torch'])\n"
        "print(code, *(m in sys.modules for m in ('torchvision', 'torch._dynamo', 'scipy', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "0 False False False False", out.stderr[-2000:]
    assert (tmp_path / "out" / "a.png").is_file()


def test_tensors_sharing_one_storage_do_not_tie_the_parameters(tmp_path) -> None:
    """A ``.pt`` state dict may hold views of one storage (layers saved tied, or a file built that way): assigned
    as they are, the parameters would be one, and a training step on one would move the other. Each parameter
    gets its own memory."""
    from fcnseg.runtime.checkpoint import build_loaded

    model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a = state["conv3_2.weight"]
    assert state["conv3_3.weight"].shape == a.shape
    state["conv3_3.weight"] = a  # saved tied: one tensor under two names (torch.save keeps them one)
    torch.save(state, tmp_path / "tied.pt")
    loaded = torch.load(tmp_path / "tied.pt", weights_only=True)
    assert (
        loaded["conv3_2.weight"].untyped_storage().data_ptr() == loaded["conv3_3.weight"].untyped_storage().data_ptr()
    )
    net = build_loaded("fcn32s_vgg16", {"num_classes": 3, "width": 1 / 16}, loaded, "tied.pt")
    assert torch.equal(net.conv3_2.weight, a) and torch.equal(net.conv3_3.weight, a)
    with torch.no_grad():
        net.conv3_2.weight.add_(1.0)
    assert torch.equal(net.conv3_3.weight, a)  # untouched: not tied to conv3_2


# -- hostile state dicts (found by an attacker pass over the shape-only load) ---------------------------------------


def _state_file(tmp_path, name, change, arch="fcn8s_resnet18", width=1 / 16):
    model = fcnseg.get_model(arch, num_classes=3, width=width)
    state = change({k: v.clone() for k, v in model.state_dict().items()})
    torch.save(state, tmp_path / name)
    return tmp_path / name, model


def test_parameters_saved_in_a_pt_file_load_as_a_fresh_build_holds_them(tmp_path) -> None:
    """``torch.save`` of ``nn.Parameter``s: assigned as they were, BatchNorm's running statistics and the fixed
    upsampling would become trainable parameters, and training would fail."""
    from torch import nn

    from fcnseg.runtime.checkpoint import build_loaded

    for dtype in (torch.float32, torch.float16):
        path, fresh = _state_file(
            tmp_path,
            "p.pt",
            lambda s, dtype=dtype: {k: nn.Parameter(v.to(dtype)) if v.is_floating_point() else v for k, v in s.items()},
        )
        net = build_loaded(
            "fcn8s_resnet18", {"num_classes": 3, "width": 1 / 16}, torch.load(path, weights_only=False), path
        )
        assert [n for n, _ in net.named_parameters()] == [n for n, _ in fresh.named_parameters()]
        assert [n for n, _ in net.named_buffers()] == [n for n, _ in fresh.named_buffers()]
        assert all(b.grad_fn is None and not b.requires_grad for b in net.buffers())
        net.train()
        net(torch.randn(2, 3, 48, 48)).mean().backward()  # BatchNorm trains: its statistics are buffers


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: {**s, "score_fr.bias": torch.full((3,), 1e300, dtype=torch.float64)}, "holds NaN or infinite"),
        (lambda s: {**s, "score_fr.bias": torch.full((3,), complex(1, 2))}, "holds complex numbers"),
        (lambda s: {**s, "score_fr.bias": torch.tensor([0.0, float("nan"), 0.0])}, "holds NaN or infinite"),
        (lambda s: {**s, "score_fr.weight": s["score_fr.weight"].to_sparse()}, "not dense weights"),
        (lambda s: {**s, "score_fr.bias": torch.zeros(3, device="meta")}, "not dense weights"),
        (lambda s: {**s, "score_fr.bias": torch.zeros(1).expand(3)}, "a view larger than the data"),
    ],
)
def test_bad_weights_for_model_and_weights_are_one_line_exit_2(tmp_path, capsys, monkeypatch, change, message) -> None:
    from PIL import Image

    from fcnseg.cli.main import main
    from fcnseg.runtime import model_source

    path, _ = _state_file(tmp_path, "w.pt", change, arch="fcn32s_vgg16", width=1.0 / 16)
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    real = model_source.build_loaded  # --model builds full width; the file holds the test's 1/16-width net
    monkeypatch.setattr(
        model_source, "build_loaded", lambda arch, kw, state, src: real(arch, {**kw, "width": 1 / 16}, state, src)
    )
    argv = ["predict", "--model", "fcn32s_vgg16", "--weights", str(path), str(tmp_path / "a.png")]
    code = main([*argv, "--out", str(tmp_path / "o"), "--engine", "torch"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o" / "a.png").exists()


def test_float8_weights_load(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16)
    path = save_checkpoint(tmp_path / "m", model, CheckpointInfo(model.arch, model_kwargs(model)))
    state = load_file(str(path))
    state["score_fr.weight"] = state["score_fr.weight"].to(torch.float8_e5m2)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(state, str(tmp_path / "f8.safetensors"), metadata=meta)
    loaded, _ = load_checkpoint(tmp_path / "f8.safetensors")
    assert loaded.score_fr.weight.dtype == torch.float32


def test_a_few_bytes_expanded_to_gigabytes_are_refused_before_any_allocation(tmp_path) -> None:
    """Every tensor of a 5000-class FCN-8s as ``torch.zeros(1).expand(shape)``: a 5 KB file standing for 29 GB.
    Refused from the file, under a 4 GiB address-space limit (copied, it would take the machine)."""
    with torch.device("meta"):
        model = fcnseg.get_model("fcn8s_vgg16", num_classes=5000)
    one = torch.zeros(1)
    state = {
        k: one.expand(v.shape) if v.is_floating_point() else torch.zeros((), dtype=v.dtype)
        for k, v in model.state_dict().items()
    }
    torch.save(state, tmp_path / "huge.pt")
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    code = (
        "import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from fcnseg.cli.main import main\n"
        f"sys.exit(main(['predict', '--model', 'fcn8s_vgg16', '--weights', {str(tmp_path / 'huge.pt')!r}, "
        f"{str(tmp_path / 'a.png')!r}, '--out', {str(tmp_path / 'o')!r}, '--engine', 'torch']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "a view larger than the data" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
