"""Batch prediction: mirrored layout, refusals, resume after a kill, manifest, torchrun shards and Ray."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fcnseg
from fcnseg.cli.main import main
from fcnseg.errors import DataError
from fcnseg.inference.layout import collect_inputs, plan_jobs
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["bg", "a", "b", "c"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16)
    with torch.no_grad():  # random score layers: several classes in every mask
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 1.0)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=CLASSES)
    return save_checkpoint(tmp_path_factory.mktemp("batch") / "m", model, info)


def _photos(root: Path, names: list[str], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _masks(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_outputs_mirror_relative_paths_without_collisions(tmp_path, checkpoint) -> None:
    _photos(tmp_path / "in", ["a/x.png", "b/x.png", "b/deep/y.jpg", "c/z.jpg", "c/z.png"])
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 0
    assert sorted(_masks(tmp_path / "o")) == ["a/x.png", "b/deep/y.png", "b/x.png", "c/z_jpg.png", "c/z_png.png"]
    records = [json.loads(line) for line in (tmp_path / "o" / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 5 and {r["input"] for r in records} == {str(p) for p in (tmp_path / "in").rglob("*.*g")}
    assert all(set(r["classes"]["labels"]) <= set(CLASSES) and r["seconds"] > 0 for r in records)
    assert all((tmp_path / "o" / f).is_file() for r in records for f in r["outputs"])


def test_two_folders_holding_the_same_names_get_their_folder_names(tmp_path) -> None:
    _photos(tmp_path, ["one/x.png", "two/x.png"])
    jobs = plan_jobs(*collect_inputs([tmp_path / "one", tmp_path / "two"]), tmp_path / "out")
    assert [j.stem for j in jobs] == ["one/x", "two/x"]


def test_output_inside_an_input_folder_or_over_an_input_is_refused(tmp_path, checkpoint, capsys) -> None:
    (photo,) = _photos(tmp_path / "in", ["x.png"])
    before = photo.read_bytes()
    for out in (tmp_path / "in", tmp_path / "in" / "masks"):
        assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(out)]) == 2
        assert "inside the input folder" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(checkpoint), str(photo), "--out", str(photo.parent)]) == 2
    err = capsys.readouterr().err
    assert "x.png: would overwrite the input image" in err and len(err.strip().splitlines()) == 1
    assert photo.read_bytes() == before
    with pytest.raises(DataError, match="inside the input folder"):
        plan_jobs(*collect_inputs([tmp_path / "in"]), tmp_path / "in")


def test_rerun_skips_complete_outputs_and_overwrite_redoes_them(tmp_path, checkpoint, capsys) -> None:
    _photos(tmp_path / "in", ["p.png", "q.png", "r.png"])
    argv = ["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    (tmp_path / "o" / "q_overlay.jpg").unlink()  # q is incomplete now
    stamp = (tmp_path / "o" / "p.png").stat().st_mtime_ns
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "wrote 1 prediction(s)" in out and "skipped 2 already complete" in out
    assert (tmp_path / "o" / "q_overlay.jpg").is_file() and (tmp_path / "o" / "p.png").stat().st_mtime_ns == stamp
    assert main([*argv, "--overwrite"]) == 0
    assert "wrote 3 prediction(s)" in capsys.readouterr().out
    assert len((tmp_path / "o" / "manifest.jsonl").read_text().splitlines()) == 3


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path, checkpoint) -> None:
    _photos(tmp_path / "in", ["p.png"])
    out = tmp_path / "o"
    out.mkdir()
    dead = out / ".p.png.999999999.0123456789ab.tmp"  # no such pid
    mine = out / f".p.png.{os.getpid()}.0123456789ab.tmp"  # a live writer's: left alone
    dead.write_bytes(b"half")
    mine.write_bytes(b"half")
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(out)]) == 0
    assert not dead.exists() and mine.exists()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fcnseg", *args], capture_output=True, text=True, env=full, cwd=ROOT)


@pytest.mark.slow
def test_killed_run_finishes_only_the_rest(tmp_path, checkpoint) -> None:
    _photos(tmp_path / "in", [f"{i:02d}.png" for i in range(6)])
    argv = ["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "o")]
    killed = _cli(*argv, env={"FCNSEG_TEST_EXIT_AFTER": "2"})
    assert killed.returncode == 137
    assert len(_masks(tmp_path / "o")) == 2 and not (tmp_path / "o" / "manifest.jsonl").exists()
    rest = _cli(*argv)
    assert rest.returncode == 0, rest.stderr
    assert "wrote 4 prediction(s)" in rest.stdout and "skipped 2 already complete" in rest.stdout
    reference = _cli(*argv[:-1], str(tmp_path / "ref"))
    assert reference.returncode == 0 and _masks(tmp_path / "o") == _masks(tmp_path / "ref")
    lines = (tmp_path / "o" / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["input"] for line in lines) == sorted(str(p) for p in (tmp_path / "in").glob("*"))


@pytest.mark.slow
def test_torchrun_shards_union_equals_one_process(tmp_path, checkpoint) -> None:
    _photos(tmp_path / "in", [f"d{i % 2}/{i:02d}.png" for i in range(7)])
    one = _cli("predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "fcnseg",
            "predict",
            "--checkpoint",
            str(checkpoint),
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert "wrote 7 prediction(s)" in two.stdout  # rank 0 reports the sum over ranks
    assert _masks(tmp_path / "two") == _masks(tmp_path / "one") and len(_masks(tmp_path / "one")) == 7
    lines = (tmp_path / "two" / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 7 and not list((tmp_path / "two").glob(".manifest.rank*"))


@pytest.mark.slow
def test_ray_two_workers_equal_one_process(tmp_path, checkpoint) -> None:
    pytest.importorskip("ray.data", reason="fcnseg[ray] is not installed")
    _photos(tmp_path / "in", [f"{i:02d}.png" for i in range(5)])
    one = _cli("predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "one"))
    ray = _cli(
        "predict",
        "--checkpoint",
        str(checkpoint),
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "ray"),
        "--ray",
        "--num-workers",
        "2",
        env={"RAY_ADDRESS": ""},
    )
    assert one.returncode == 0 and ray.returncode == 0, ray.stderr[-2000:]
    assert _masks(tmp_path / "ray") == _masks(tmp_path / "one") and len(_masks(tmp_path / "one")) == 5
    assert len((tmp_path / "ray" / "manifest.jsonl").read_text().splitlines()) == 5
    noise = [line for line in ray.stderr.splitlines() if line.strip() and not line.startswith("fcnseg")]
    assert noise == [], noise[:5]  # Ray's own WARN / INFO / core_worker lines are not the user's


def test_segment_batch_is_a_map_batches_callable(checkpoint) -> None:
    from fcnseg.inference.ray_predict import SegmentBatch

    fn = SegmentBatch(str(checkpoint), shares=True, threads=1)
    images = np.random.default_rng(1).integers(0, 256, (2, 30, 40, 3), dtype=np.uint8)
    out = fn({"image": images, "id": np.array([7, 8])})
    assert [m.shape for m in out["mask"]] == [(30, 40), (30, 40)] and out["id"].tolist() == [7, 8]
    assert out["class_shares"].shape == (2, 4) and np.allclose(out["class_shares"].sum(1), 1.0)
    seg = fcnseg.inference.Segmenter(checkpoint)
    assert np.array_equal(out["mask"][0], seg.predict(images[0]))


def test_missing_ray_is_one_line(tmp_path, checkpoint, capsys, monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name=name)
        return real(name, *args, **kwargs)

    _photos(tmp_path / "in", ["p.png"])
    monkeypatch.setattr(builtins, "__import__", no_ray)
    code = main(
        ["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--ray"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'fcnseg[ray]'" in err and len(err.strip().splitlines()) == 1


def test_jobs_of_one_image_size_run_together_so_per_shape_engines_compile_each_size_once(tmp_path) -> None:
    from fcnseg.inference.layout import by_shape

    sizes = [(40, 30), (30, 40), (50, 20)]
    (tmp_path / "in").mkdir()
    for i in range(9):  # in name order the sizes cycle: a per-shape compile cache of fewer than 3 would thrash
        Image.new("RGB", sizes[i % 3]).save(tmp_path / "in" / f"p{i}.png")
    (tmp_path / "in" / "z-broken.png").write_bytes(b"not an image")
    os.mkfifo(tmp_path / "in" / "y-fifo.png")  # never opened blocking: it would hang the sort
    jobs = plan_jobs(*collect_inputs([tmp_path / "in"]), tmp_path / "out")
    ordered = by_shape(jobs)
    names = [j.source.name for j in ordered]
    assert names[:2] == ["y-fifo.png", "z-broken.png"]  # unreadable headers first, where reading them reports it
    shapes = [Image.open(j.source).size for j in ordered[2:]]
    assert shapes == sorted(shapes, key=lambda s: (s[1], s[0])) and len(set(shapes)) == 3
    changes = sum(a != b for a, b in itertools.pairwise(shapes))
    assert changes == 2  # each size once, in one run
    assert names[2:5] == ["p2.png", "p5.png", "p8.png"]  # stable: name order within a size
