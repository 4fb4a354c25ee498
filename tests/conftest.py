"""Shared fixtures: the reference data directory, tiny-model settings, deterministic seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Inference runs fp32 PyTorch unless a test asks for another engine: ``--engine auto`` (the library's default)
# times engines on the machine, so its choice — and a reduced precision's last-bit labels — would depend on
# how loaded the machine is. tests/inference/test_auto_engine.py tests ``auto`` itself. CLI children inherit it.
os.environ.setdefault("FCNSEG_ENGINE", "torch")


def _reference_dir() -> Path:
    env = os.environ.get("FCNSEG_REFERENCE_DATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "reference-data", REPO / "shared" / "reference-data"]
    for c in candidates:
        if (c / "pascal" / "classes.txt").is_file():
            return c
    pytest.skip(f"reference data not found (looked in {', '.join(map(str, candidates))})")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _reference_dir()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def fcnseg_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own FCNSEG_HOME (engine and weights caches): never the user's ~/.cache, never shared."""
    home = tmp_path_factory.mktemp("fcnseg-home")
    monkeypatch.setenv("FCNSEG_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class FCN-8s checkpoint at 1/16 width (classes bg, a, b, c); modules may define their own."""
    import fcnseg
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "m", model, info)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.cuda`` tests run where CUDA is present and are skipped, saying why, elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False on this machine")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def tiny_width(name: str) -> float:
    """Smallest width every family accepts (GoogLeNet's Inception branches need whole channels)."""
    return 0.125 if "googlenet" in name else 1 / 16
