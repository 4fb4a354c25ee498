"""Typed configs: YAML + overrides, unknown keys and wrong types named, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcnseg.config import RunConfig, dump_config, load_config
from fcnseg.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_reference_solver() -> None:
    cfg = load_config()
    assert (cfg.train.lr, cfg.train.momentum, cfg.train.weight_decay, cfg.train.normalize) == (1e-10, 0.99, 5e-4, False)
    assert cfg.train.bias_lr_mult == 2.0 and cfg.data.batch_size == 1 and cfg.train.seed == 1337


def test_yaml_then_overrides_and_round_trip(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: fcn32s_vgg16\ntrain:\n  lr: 1e-10\n  max_iter: 5\n")
    cfg = load_config(path, ["train.lr=1e-4", "data.scale_range=[0.5, 2.0]"])
    assert cfg.model.name == "fcn32s_vgg16" and cfg.train.lr == 1e-4 and cfg.train.max_iter == 5
    assert cfg.data.scale_range == (0.5, 2.0)
    (tmp_path / "d.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "d.yaml") == cfg


@pytest.mark.parametrize(
    "text, overrides, match",
    [
        ("train:\n  lrr: 1\n", [], r"train\.lrr: unknown key in .*c\.yaml; did you mean train\.lr\?"),
        ("trian:\n  lr: 1\n", [], r"trian: unknown section in .*c\.yaml; did you mean train\?"),
        ("train:\n  max_iter: many\n", [], r"train\.max_iter: expected int, got 'many'"),
        ("model: [1]\n", [], r"model: expected a mapping"),
        ("", ["train.lr"], r"must look like section\.key=value"),
        ("", ["lr=1"], r"key must be section\.key"),
        ("", ["data.flip=maybe"], r"data\.flip: expected bool"),
        ("train: {lr: 1\n", [], r"not valid YAML"),
        # every choice is checked at load, not when training reaches it
        ("", ["train.class_weights=inverse_freq"], r"train\.class_weights: 'inverse_freq'.*inverse_frequency"),
        ("", ["train.loss=dice"], r"train\.loss: 'dice'.*use one of ce, focal"),
        ("", ["train.optimizer=adam"], r"train\.optimizer: 'adam'.*sgd, adamw"),
        ("", ["data.preprocessing=bgr"], r"data\.preprocessing: 'bgr'"),
        ("", ["train.device=gpu"], r"train\.device: 'gpu'.*cuda:N"),
        ("", ["model.freeze=trunk"], r"model\.freeze: 'trunk'.*up_to:LAYER"),
    ],
)
def test_bad_configs_name_the_key_and_file(tmp_path, text: str, overrides: list[str], match: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path, overrides)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config("nope.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_load_and_name_registered_models(path: Path) -> None:
    import fcnseg
    import fcnseg.data

    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    assert cfg.model.name in fcnseg.list_models()
    assert cfg.data.name in fcnseg.data.list_datasets()
