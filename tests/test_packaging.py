"""A wheel (``pip install .``, not ``-e``) carries the default config, the shipped styles and the
painting catalogue, and ``stylize`` finds them from any folder.

The end-to-end test builds the wheel from a copy of the source tree (building in the checkout
would leave ``build/`` there, whose stale files can leak into later wheels), installs it into a
fresh virtual environment that borrows the test interpreter's installed dependencies through a
``.pth`` line (a path added that way is not a site folder, so the editable install's own ``.pth``
there is not run and the checkout's ``realtime`` stays invisible), and stylizes from an unrelated
folder.  It skips only where no wheel can be built at all, and never where
``REALTIME_REQUIRE_WHEEL=1`` (CI), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, content_image

from realtime.io.images import read_image, write_image
from realtime.resources import DATA_DIR, shipped

# What the build does not read (and what a working checkout may hold in bulk).
NOT_BUILT = (".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
             "tests", "benchmarks", ".ci", "deploy", "recordings", "snapshots", "out")


def test_shipped_folders_inside_a_wheel_beside_in_a_checkout(tmp_path):
    wheel = tmp_path / "site-packages" / "realtime"
    (wheel / DATA_DIR / "styles").mkdir(parents=True)
    (tmp_path / "site-packages" / "styles").mkdir()  # somebody else's folder: never ours
    assert shipped("styles", wheel) == (wheel / DATA_DIR / "styles").resolve()
    assert shipped("configs", wheel) == (wheel / DATA_DIR / "configs").resolve()  # missing: named where it belongs
    checkout = tmp_path / "checkout"
    (checkout / "realtime").mkdir(parents=True)
    (checkout / "styles").mkdir()
    (checkout / "pyproject.toml").write_text("[project]\n")
    assert shipped("styles", checkout / "realtime") == (checkout / "styles").resolve()
    # This checkout: the top-level folders themselves, no copies.
    assert shipped("configs") == (ROOT / "configs").resolve() and shipped("styles") == (ROOT / "styles").resolve()


def _build_wheel(src: Path, out: Path) -> Path:
    """``pip wheel`` with build isolation (setuptools from the registry); without it (the
    environment's setuptools) where the registry cannot be reached.  Skips, or in CI fails, when
    neither builds."""
    errors = []
    for extra in ([], ["--no-build-isolation"]):
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                            *extra, "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
        wheels = sorted(out.glob("realtime-*.whl"))
        if r.returncode == 0 and wheels:
            return wheels[0]
        errors.append(f"pip wheel {' '.join(extra)}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    msg = "cannot build a wheel here: " + "; ".join(errors)
    if os.environ.get("REALTIME_REQUIRE_WHEEL") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def _fresh_venv(where: Path, wheel: Path) -> Path:
    """A new environment with only the wheel installed, then the test interpreter's dependencies
    made visible through a ``.pth`` line (after the install, so pip sees no other ``realtime``).
    Without pip of its own where this pip can install into it (``pip --python``, pip 22.3): 1 s
    instead of 7."""
    import pip

    remote = tuple(int(x) for x in pip.__version__.split(".")[:2]) >= (22, 3)
    subprocess.run([sys.executable, "-m", "venv", *(["--without-pip"] if remote else []), str(where)],
                   check=True, capture_output=True, timeout=120)
    python = where / "bin" / "python"
    pip_cmd = [sys.executable, "-m", "pip", "--python", str(python)] if remote else [str(python), "-m", "pip"]
    r = subprocess.run([*pip_cmd, "install", "--no-deps", "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in (*site.getsitepackages(), site.getusersitepackages()) if os.path.isdir(p)]
    Path(purelib, "_deps_of_the_test_interpreter.pth").write_text("".join(p + "\n" for p in deps))
    return where / "bin"


def test_wheel_carries_the_shipped_files_and_stylizes_from_any_folder(models_dir, tmp_path):
    t0 = time.monotonic()
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_BUILT))
    wheel = _build_wheel(src, tmp_path / "wheels")
    bin_dir = _fresh_venv(tmp_path / "venv", wheel)
    venv = (tmp_path / "venv").resolve()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "styles").mkdir(parents=True)
    write_image(elsewhere / "styles" / "my_own.png", content_image(96, 96, 11))  # a user's own styles/ folder
    photo = write_image(elsewhere / "photo.png", content_image(160, 120))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=180)

    probe = "import realtime, realtime.resources as r; print(realtime.__file__); print(r.SHIPPED_STYLES); print(r.DEFAULT_CONFIG_PATH)"
    r = run(str(bin_dir / "python"), "-c", probe)
    assert r.returncode == 0, r.stderr
    package, styles, default_config = (Path(line).resolve() for line in r.stdout.split())
    assert package.is_relative_to(venv) and not package.is_relative_to(ROOT.resolve())
    assert styles.is_relative_to(venv) and (styles / "mosaic.jpg").is_file() and (styles / "catalog.yaml").is_file()
    assert default_config.is_relative_to(venv) and default_config.read_text() == (ROOT / "configs" / "default.yaml").read_text()

    backend = "openvino" if _importable("openvino") else "tflite"
    r = run(str(bin_dir / "stylize"), "image", str(photo), "--style", "mosaic", "-o", "out.png",
            "--backend", backend, "--no-download")
    assert r.returncode == 0, r.stderr
    assert f"backend {backend}" in r.stderr
    out = read_image(elsewhere / "out.png")
    assert out.shape == (120, 160, 3) and abs(out.astype(int) - read_image(photo)).mean() > 10  # stylized

    r = run(str(bin_dir / "stylize"), "styles", "list")
    assert r.returncode == 0, r.stderr
    catalogue = yaml.safe_load((ROOT / "styles" / "catalog.yaml").read_text())["styles"]
    assert "my_own" in r.stdout and "mosaic" in r.stdout and catalogue[0]["name"] in r.stdout
    assert "styles in styles/ (1)" in r.stdout and f"styles in {styles}/ " in r.stdout
    print(f"wheel build, install and run: {time.monotonic() - t0:.1f} s")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_the_license_is_an_spdx_expression_the_build_does_not_warn_about(tmp_path):
    """``project.license`` as an SPDX string (PEP 639, setuptools>=77), not the deprecated table:
    the build says nothing about it and the metadata carries ``License-Expression``."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(meta["project"]["license"], str)
    assert not any(c.startswith("License ::") for c in meta["project"].get("classifiers", []))  # refused beside an expression
    requires = " ".join(meta["build-system"]["requires"])
    assert "setuptools>=77" in requires.replace(" ", ""), requires
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_BUILT))
    (tmp_path / "meta").mkdir()
    code = "import setuptools.build_meta as b, sys; print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-W", "always", "-c", code, str(tmp_path / "meta")], cwd=src,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    said = [line for line in (r.stderr + r.stdout).lower().splitlines() if "license" in line and "warn" in line]
    assert not said, r.stderr
    metadata = (tmp_path / "meta" / r.stdout.split()[-1] / "METADATA").read_text()
    assert f"License-Expression: {meta['project']['license']}" in metadata, metadata[:600]
