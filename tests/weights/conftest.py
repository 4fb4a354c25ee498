"""Fixtures of the weights tests: a loopback mirror, and the registry scaled down to 1/16 width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.weights.files import Server, restore_registry, scale_registry


@pytest.fixture
def scaled_registry() -> Iterator[None]:
    """The release's, torchfcn's and the Caffe trunks' entries at 1/16 width without checksums, for this test."""
    scale_registry()
    yield
    restore_registry()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A folder served over 127.0.0.1, set as ``FCNSEG_WEIGHTS_MIRROR``; put files in ``mirror.root``."""
    root = tmp_path / "mirror"
    root.mkdir()
    server = Server(root)
    monkeypatch.setenv("FCNSEG_WEIGHTS_MIRROR", server.url)
    monkeypatch.delenv("FCNSEG_OFFLINE", raising=False)
    yield server
    server.stop()
