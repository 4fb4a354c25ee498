"""The package as a user installs and imports it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fcnseg

ROOT = Path(__file__).resolve().parents[1]


def test_import_beside_a_folder_named_fcnseg_gets_the_package(tmp_path: Path) -> None:
    """A clone's folder is often named ``fcnseg``: from the folder that holds it, ``import fcnseg`` must still give
    the installed package, not an empty namespace package made of the clone's folder (``get_model`` missing)."""
    clone = tmp_path / "fcnseg"
    clone.mkdir()
    (clone / "README.md").write_text("a clone of the repository, not the package\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import fcnseg; print(fcnseg.__file__); fcnseg.get_model"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip()).resolve() == Path(fcnseg.__file__).resolve()


def test_the_package_lives_under_src() -> None:
    """The src layout: nothing named ``fcnseg`` at the repository's top for Python to mistake for the package."""
    assert Path(fcnseg.__file__).resolve().parent == ROOT / "src" / "fcnseg"
    assert not (ROOT / "fcnseg").exists()


def test_dir_lists_the_public_api_not_the_package_s_helpers() -> None:
    import fcnseg

    names = dir(fcnseg)
    assert set(fcnseg.__all__) <= set(names)
    assert not {"TYPE_CHECKING", "annotations", "lazy_attributes"} & set(names), names
