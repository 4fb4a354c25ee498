"""Config values inside the types' ranges that failed later, or trained nothing: refused at load, or made to work.

Every case trains through the command line in a child process under an address-space limit (a crop or jitter
of 100000 px once asked for 120 GB)."""

from __future__ import annotations

import pytest

from fcnseg.config import load_config
from fcnseg.errors import ConfigError
from tests.badinput import no_traceback, run_cli_cases

TINY = [
    "model.name=fcn32s_vgg16",
    "model.width=0.0625",
    "train.max_iter=2",
    "train.eval_every=1000",
    "train.checkpoint_every=1000",
    "data.options={n: 4, size: 32}",
    "data.val_options={n: 2}",
    "data.workers=0",
    "train.device=cpu",
]

#: (override, exit code, words of the one error line; for exit 0, of nothing)
CASES = [
    ("data.crop_size=100000", 2, "data.crop_size: 100000 in "),
    ("data.crop_size=10001", 2, "at most 10000 px, the side of the pixel limit of 100000000"),
    ("data.jitter=100000", 2, "data.jitter: 100000 in "),
    ("data.scale_range=[1e-300, 1e-300]", 2, "data.scale_range: [1e-300, 1e-300]"),
    ("data.scale_range=[1e-300, 1]", 2, "expected 0.01 <= low <= high <= 100"),
    ("data.scale_range=[1, 1e30]", 2, "data.scale_range: [1, 1e+30]"),
    ("model.num_classes=2", 2, "model.num_classes: 2, but the training set has 9 classes"),
    ("model.heads={sem: 9}", 2, "model.heads.sem: the dataset has no mask 'sem'"),
    ("train.device=mps", 2, "device 'mps': Apple's MPS is not available"),
    ("train.class_weights=[0, 0, 0, 0, 0, 0, 0, 0, 0]", 2, "all zero, no pixel would count in the loss"),
    ("data.options={n: 4, size: 100000}", 2, "SyntheticShapes size 100000: 100000×100000 exceeds the limit"),
    ("model.width=16", 2, "model: fcn32s_vgg16 at model.width 16 with these classes, heads and streams has"),
    ("train.seed=9223372036854775807", 0, ""),  # the largest seed the range allows trains
    ("data.jitter=10000", 0, ""),  # the largest jitter: a shift, not a 20000-px padding
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> list[dict]:
    base = tmp_path_factory.mktemp("config-values")
    (base / "c.yaml").write_text("train: {}\n")
    argvs = [
        ["train", str(base / "c.yaml"), "--out", str(base / f"run{n}"), "--quiet", "--set", *TINY, override]
        for n, (override, _, _) in enumerate(CASES)
    ]
    return run_cli_cases(base, argvs)


@pytest.mark.parametrize("n, override, code, words", [(n, *c) for n, c in enumerate(CASES)], ids=[c[0] for c in CASES])
def test_config_value_refused_at_load_or_working(outcomes, n, override, code, words) -> None:
    got = outcomes[n]
    no_traceback(got["err"], got["code"] or 0)
    assert got["code"] == code and words in got["err"], got["err"][-2000:]


def test_pixel_limit_moves_the_size_bounds(monkeypatch) -> None:
    monkeypatch.setenv("FCNSEG_MAX_PIXELS", "4096")
    with pytest.raises(ConfigError, match=r"data.crop_size: 65 in .*at most 64 px"):
        load_config(None, ["data.crop_size=65"])
    assert load_config(None, ["data.crop_size=64", "data.jitter=64"]).data.crop_size == 64
