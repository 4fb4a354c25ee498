"""Segmenter: inputs of every kind, tiled inference (agreement, bounded memory), test-time augmentation."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

import fcnseg
from fcnseg.cli.main import main
from fcnseg.data import SyntheticShapes
from fcnseg.errors import ConfigError
from fcnseg.inference.tiling import tile_starts
from fcnseg.train.trainer import fit
from tests.helpers import tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    """A small FCN-8s fitted for a few seconds on synthetic scenes (predictions with structure)."""
    run = tmp_path_factory.mktemp("trained")
    cfg = tiny(
        "model.width=0.25",
        "data.options={n: 60, size: 64}",
        "data.val_options={n: 2}",
        "data.batch_size=8",
        "train.max_iter=300",
        "train.eval_every=300",
        "train.checkpoint_every=300",
        "train.lr=0.05",
    )
    fit(cfg, run, progress=False)
    return str(run / "checkpoints" / "last.safetensors")


def _scene(size: int = 192, seed: int = 1) -> np.ndarray:
    return SyntheticShapes(1, size, "test", seed=seed).generate(0)[0]


def _mosaic(k: int = 10) -> np.ndarray:
    """k × k of the fixture's own 64-px training scenes, so the small model predicts real structure."""
    ds = SyntheticShapes(60, 64, "train", seed=0)
    rows = [np.concatenate([ds.generate((r * k + c) % 60)[0] for c in range(k)], 1) for r in range(k)]
    return np.concatenate(rows, 0)


def test_tile_starts_cover_the_image() -> None:
    for length in (1, 5, 127, 128, 129, 1000):
        starts = tile_starts(length, 128, 32)
        assert starts[0] == 0 and starts[-1] + min(128, length) == length
        assert all(b - a <= 96 for a, b in itertools.pairwise(starts))
    with pytest.raises(ConfigError, match="tile must be larger than overlap"):
        tile_starts(10, 4, 4)


def test_segmenter_accepts_pil_numpy_tensor_and_path(tmp_path, trained) -> None:
    seg = fcnseg.Segmenter(trained)
    image = _scene(64)
    Image.fromarray(image).save(tmp_path / "a.png")
    ref = seg.predict(image)
    assert ref.shape == (64, 64) and ref.dtype == np.uint8
    for variant in (
        Image.fromarray(image),
        torch.from_numpy(image).permute(2, 0, 1),
        tmp_path / "a.png",
        image.astype(np.float32) / 255,
    ):
        np.testing.assert_array_equal(seg.predict(variant), ref)


def test_tiled_agrees_with_whole_image_inference(trained) -> None:
    seg = fcnseg.Segmenter(trained)
    image = _mosaic()
    whole = seg.predict(image)
    assert len(np.unique(whole)) >= 3  # a prediction with structure, not one class everywhere
    tiled = seg.predict(image, tile=512, overlap=128)  # the CLI defaults, on a 640-px image: 4 tiles
    assert (tiled == whole).mean() >= 0.99
    np.testing.assert_array_equal(seg.predict(image, tile=640), whole)  # one tile = whole image


def test_test_time_augmentation(trained) -> None:
    seg = fcnseg.Segmenter(trained)
    image = _scene(96)
    p = seg.probabilities(image, flip=True, scales=(0.75, 1.0, 1.25))
    assert p.shape == (9, 96, 96) and torch.allclose(p.sum(0), torch.ones(96, 96), atol=1e-4)
    mirrored = seg.probabilities(image[:, ::-1].copy(), flip=True)
    torch.testing.assert_close(mirrored.flip(-1), seg.probabilities(image, flip=True), rtol=1e-4, atol=1e-5)
    assert (seg.predict(image, flip=True, scales=(0.75, 1.0, 1.25)) == seg.predict(image)).mean() > 0.9


def test_cli_predict_tiled_with_grid(tmp_path, trained, capsys) -> None:
    Image.fromarray(_scene(160)).save(tmp_path / "big.png")
    args = [
        "predict",
        "--checkpoint",
        trained,
        str(tmp_path / "big.png"),
        "--out",
        str(tmp_path / "o"),
        "--tile",
        "96",
        "--overlap",
        "32",
        "--grid",
        "4",
        "--flip",
    ]
    assert main(args) == 0
    assert Image.open(tmp_path / "o" / "big.png").size == (160, 160)
    assert (tmp_path / "o" / "grid.png").is_file() and (tmp_path / "o" / "big_overlay.jpg").is_file()


@pytest.mark.slow
def test_6000_by_4000_image_stays_under_3_gb(tmp_path, trained) -> None:
    """Memory is bounded by the tile row, not the image: peak RSS of a separate process < 3 GB.

    Peak RSS is read from /proc/self/status (VmHWM, this process's own address space): ``ru_maxrss``
    would carry over the high-water mark of the forking pytest process.
    """
    script = textwrap.dedent(f"""
        import numpy as np, fcnseg
        seg = fcnseg.Segmenter({trained!r})
        image = np.random.default_rng(0).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
        labels = seg.predict(image, tile=512, overlap=128)
        assert labels.shape == (4000, 6000)
        status = open("/proc/self/status").read()
        print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 3 * 1024, peak_mb
