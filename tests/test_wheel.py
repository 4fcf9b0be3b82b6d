"""The wheel: built from the source as ``pip install .`` builds it, installed into a fresh virtual environment, and run
there from outside the source tree, so that whatever the wheel lacks (the shipped model, package data) fails here.

The fresh environment sees the dependencies through a ``.pth`` file naming this environment's site-packages instead of
installing gigabytes again. A path named in a ``.pth`` file is only put on ``sys.path``: the ``.pth`` files inside it
are not run, so an editable install of eelsbatch there (a ``__editable__*.pth`` and its import finder) does not leak in.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import zarr

from eelsbatch.io import is_complete
from eelsbatch.model import SHIPPED_MODEL

SOURCE = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "eelsbatch")  # all that the build backend reads


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the eelsbatch wheel installed, the dependencies borrowed from this one."""
    root = tmp_path_factory.mktemp("wheel")
    # A copy, so that the build's build/ and egg-info stay out of the source tree (and stale files there out of the wheel).
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (SOURCE / name).is_dir():
            shutil.copytree(SOURCE / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(SOURCE / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--quiet", "-w", root / "dist", cwd=root)
    (wheel,) = (root / "dist").glob("eelsbatch-*.whl")

    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    site_packages = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).stdout.strip())
    (site_packages / "eelsbatch-test-dependencies.pth").write_text("".join(f"{path}\n" for path in site.getsitepackages()))
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel, cwd=root)
    return venv


def _clean_environment(venv: Path) -> dict[str, str]:
    """This process's environment with the fresh venv first on PATH and nothing pointing into the source tree."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}


def test_the_installed_wheel_imports_from_itself_and_carries_the_shipped_model(wheel_venv: Path, tmp_path: Path) -> None:
    probe = ("import json, sys, eelsbatch, eelsbatch.shipped as s; "
             "print(json.dumps([eelsbatch.__file__, str(s.SHIPPED_MODEL), sorted(p.name for p in s.SHIPPED_MODEL.iterdir()), "
             "[name for name in sys.modules if name.startswith('__editable__')]]))")
    result = _run(wheel_venv / "bin" / "python", "-c", probe, cwd=tmp_path, env=_clean_environment(wheel_venv))
    package, model, files, editable_finders = json.loads(result.stdout)
    assert not editable_finders, "the source tree's editable install leaked into the fresh environment"
    for path in (Path(package), Path(model)):
        assert path.is_relative_to(wheel_venv) and not path.is_relative_to(SOURCE), path
    assert {"weights.safetensors", "config.json", "MODEL_CARD.md"} <= set(files)
    assert (Path(model) / "weights.safetensors").read_bytes() == (SHIPPED_MODEL / "weights.safetensors").read_bytes()


def test_map_runs_from_the_wheel_with_the_shipped_model(wheel_venv: Path, tmp_path: Path) -> None:
    env, eelsbatch = _clean_environment(wheel_venv), wheel_venv / "bin" / "eelsbatch"
    _run(eelsbatch, "synth", "si.zarr", "--spectrum-image", "--shape", "4x4", "--workers", "1", cwd=tmp_path, env=env)
    result = _run(eelsbatch, "map", "si.zarr", "maps.zarr", "--workers", "1", cwd=tmp_path, env=env)
    assert "wrote maps.zarr" in result.stdout and "Traceback" not in result.stderr
    assert is_complete(tmp_path / "maps.zarr")
    attrs = zarr.open_group(str(tmp_path / "maps.zarr"), mode="r").attrs
    recorded = json.loads((SHIPPED_MODEL / "config.json").read_text())["weights_sha256"]
    assert attrs["model_name"] == SHIPPED_MODEL.name and attrs["model_sha256"] == recorded
