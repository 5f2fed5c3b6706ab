"""The layers of ARCHITECTURE.md hold: import-linter's contracts (pyproject.toml) on the package,
and a planted back-import in a copy of it is caught (so the check can fail)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"})


def test_the_package_keeps_its_layers_and_has_no_circles():
    r = lint(ROOT, ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout


def test_a_back_import_and_a_circle_are_caught(tmp_path):
    shutil.copytree(ROOT / "realtime", tmp_path / "realtime", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "realtime" / "core" / "frames.py", "a") as f:
        f.write("\nfrom ..pipeline import stage  # upward: core must not know the pipeline\n")
    with open(tmp_path / "realtime" / "io" / "media" / "decode.py", "a") as f:
        f.write("\nfrom .. import sinks  # io.media -> io.sinks -> io.media: a circle\n")
    r = lint(tmp_path, tmp_path)
    assert r.returncode != 0
    assert "realtime.core.frames -> realtime.pipeline" in r.stdout, r.stdout
    assert "2 broken" in r.stdout, r.stdout
