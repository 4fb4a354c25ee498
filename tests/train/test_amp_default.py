"""``train.amp: auto`` (the default): bf16 exactly where the CPU has bf16 units, recorded, and kept on resume.

The ISA predicate is monkeypatched both ways, so both branches run on any machine (bf16 autocast works on
every CPU; without bf16 units oneDNN only emulates it, more slowly).
"""

from __future__ import annotations

import csv
import logging

import pytest
import torch

from fcnseg.cli.main import main
from fcnseg.config import TrainConfig, load_config
from fcnseg.errors import CheckpointError, ConfigError
from fcnseg.runtime import hardware as isa
from fcnseg.runtime.checkpoint import load_training_state, read_info, state_file
from fcnseg.train import amp
from fcnseg.train.amp import amp_dtype, run_dtype
from fcnseg.train.distributed import DistInfo
from fcnseg.train.trainer import fit
from tests.helpers import tiny

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # amp_dtype reads only the device's type: no GPU needed


def _bf16_units(monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    monkeypatch.setattr(isa, "has_bf16_units", lambda: present)


def _losses(run_dir) -> dict[int, float]:
    with (run_dir / "log.csv").open() as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r["loss"]}


def test_auto_is_the_default_and_parses_from_yaml(tmp_path) -> None:
    assert TrainConfig().amp == "auto" and load_config().train.amp == "auto"
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  amp: auto\n")
    assert load_config(path).train.amp == "auto"
    assert load_config(None, ["train.amp=true"]).train.amp is True
    with pytest.raises(ConfigError, match=r"train\.amp"):
        load_config(None, ["train.amp=sometimes"])


@pytest.mark.parametrize("present", [True, False])
def test_auto_is_bf16_on_a_cpu_exactly_when_it_has_bf16_units(monkeypatch, present: bool) -> None:
    _bf16_units(monkeypatch, present)
    auto = load_config(None, ["train.amp=auto", "train.amp_dtype=float16"])  # amp_dtype applies to `true` only
    assert amp_dtype(auto, CPU) is (torch.bfloat16 if present else None)
    assert amp_dtype(auto, CUDA) is None  # AMP on CUDA stays opt-in
    assert amp_dtype(load_config(None, ["train.amp=false"]), CPU) is None  # forced off
    assert amp_dtype(load_config(None, ["train.amp=true"]), CPU) is torch.bfloat16  # forced on, either way
    assert amp_dtype(load_config(None, ["train.amp=true"]), CUDA) is torch.float16


@pytest.mark.parametrize(("present", "name"), [(True, "bfloat16"), (False, "float32")])
def test_a_run_records_what_auto_resolved_to(tmp_path, monkeypatch, capsys, present: bool, name: str) -> None:
    _bf16_units(monkeypatch, present)
    fit(tiny("train.amp=auto", "train.max_iter=3"), tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last"
    assert load_training_state(last)["amp_dtype"] == name
    assert read_info(last.with_suffix(".safetensors")).train_dtype == name
    assert read_info(tmp_path / "checkpoints" / "best.safetensors").train_dtype == name
    assert main(["info", str(last.with_suffix(".safetensors"))]) == 0
    assert f"trained in:         {name}" in capsys.readouterr().out


def test_resume_on_a_machine_without_bf16_units_keeps_bf16_and_says_so(tmp_path, monkeypatch, caplog) -> None:
    """Trained to step 3 on a bf16 CPU, resumed where ``auto`` would pick fp32: still bf16, bit for bit the
    uninterrupted bf16 run (the same CPU computes both, so bf16 rounding is identical), with a note."""
    cfg = tiny("train.amp=auto", "model.width=0.125")
    _bf16_units(monkeypatch, True)
    fit(cfg, tmp_path / "full", progress=False)
    fit(tiny("train.amp=auto", "model.width=0.125", "train.max_iter=3"), tmp_path / "part", progress=False)
    caplog.clear()
    _bf16_units(monkeypatch, False)
    with caplog.at_level(logging.INFO, logger="fcnseg"):
        fit(cfg, tmp_path / "part", resume=True, progress=False)
    note = caplog.text
    assert "resuming in bfloat16 as this run was trained (train.amp=auto would choose float32" in note
    assert load_training_state(tmp_path / "part" / "checkpoints" / "last")["amp_dtype"] == "bfloat16"
    full, part = _losses(tmp_path / "full"), _losses(tmp_path / "part")
    assert {s: part[s] for s in full} == full  # fp32 from step 4 would differ from the bf16 run's losses


def test_resume_of_an_fp32_run_stays_fp32_even_where_auto_means_bf16(monkeypatch, caplog) -> None:
    _bf16_units(monkeypatch, True)
    cfg = tiny("train.amp=auto")
    with caplog.at_level(logging.INFO, logger="fcnseg"):
        assert run_dtype(cfg, CPU, DistInfo(), {"amp_dtype": "float32"}) is None
    assert "resuming in float32" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fcnseg"):
        assert run_dtype(cfg, CPU, DistInfo(), {"amp_dtype": "bfloat16"}) is torch.bfloat16
    assert caplog.text == ""  # what auto picks here anyway: nothing to say
    assert run_dtype(cfg, CPU, DistInfo(), {}) is torch.bfloat16  # a state from before the dtype was recorded


def test_a_malformed_recorded_dtype_is_refused(tmp_path) -> None:
    fit(tiny("train.max_iter=3"), tmp_path, progress=False)
    path = state_file(tmp_path / "checkpoints" / "last", 3)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "amp_dtype": "int8"}, path)
    with pytest.raises(CheckpointError, match="amp_dtype 'int8'"):
        fit(tiny(), tmp_path, resume=True, progress=False)


def test_the_module_names_dtypes_as_records_do() -> None:
    assert [amp.dtype_name(d) for d in (None, torch.bfloat16, torch.float16)] == list(amp.DTYPE_NAMES)
