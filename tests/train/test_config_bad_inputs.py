"""Bad configs and training set-ups: one line naming the key, exit 2, before anything runs."""

from __future__ import annotations

import pytest

import fcnseg
from fcnseg.cli.main import main
from tests.badinput import no_traceback


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
            [],
            "alias bomb",
        ),
        ("train:\n  lr: " + "[" * 5000 + "]" * 5000 + "\n", [], "nested deeper than"),
        (b"train:\n  lr: \xff\xfe\n", [], "not UTF-8 text"),
        ("- 1\n- 2\n", [], "top level must be a mapping"),
        ("", ["train.lr=[1"], "override 'train.lr=[1': not valid YAML"),
        ("", ["train.iter_size=0"], "train.iter_size: 0"),
        ("", ["train.max_iter=0"], "train.max_iter: 0"),
        ("", ["train.weight_decay=-0.1"], "train.weight_decay: -0.1"),
        ("", ["train.lr=-1"], "train.lr: -1.0"),
        ("", ["train.momentum=1.5"], "train.momentum: 1.5"),
        ("", ["data.batch_size=0"], "data.batch_size: 0"),
        ("", ["train.eval_every=0"], "train.eval_every: 0"),
        ("", ["data.workers=-1"], "data.workers: -1"),
        ("", ["train.device=gpu7"], "train.device: 'gpu7'"),
        ("", ["train.lr=.nan"], "not a finite number"),
        ("", ["train.schedule=cosine"], "train.schedule: 'cosine'"),
        ("", ["data.options={nn: 3}", "model.width=0.0625", "train.max_iter=1"], "data.options {'nn': 3}"),
    ],
)
def test_bad_configs_are_one_line(tmp_path, capsys, text, overrides, message) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    sets = ["--set", *overrides] if overrides else []
    code = main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet", *sets])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err


def test_stale_world_size_is_refused_at_once(tmp_path, capsys, monkeypatch) -> None:
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "4")
    (tmp_path / "c.yaml").write_text("model: {name: fcn32s_vgg16, width: 0.0625}\ntrain: {max_iter: 1}\n")
    for argv in (
        ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r"), "--quiet"],
        ["predict", "--model", "fcn8s_vgg16", "--weights", str(tmp_path / "w.pt"), str(tmp_path)],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        no_traceback(err, code)
        assert code == 2 and "WORLD_SIZE=4 is set but RANK, MASTER_ADDR, MASTER_PORT are not" in err, err


def test_second_run_into_a_locked_folder_is_refused(tmp_path) -> None:
    from fcnseg.config import load_config
    from fcnseg.train.runlock import run_lock
    from fcnseg.train.trainer import fit

    cfg = load_config(None, ["model.name=fcn32s_vgg16", "model.width=0.0625", "train.max_iter=1"])
    with run_lock(tmp_path / "run"), pytest.raises(fcnseg.errors.ConfigError, match="another fcnseg run"):
        fit(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "log.csv").exists()


def test_init_from_that_copies_nothing_is_refused(tmp_path) -> None:
    import torch

    from fcnseg.train.build import init_from

    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pt")
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    with pytest.raises(fcnseg.errors.ConfigError, match="no layer of it fits fcn8s_vgg16"):
        init_from(model, tmp_path / "other.pt")
