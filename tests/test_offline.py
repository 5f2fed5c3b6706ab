"""A newcomer's first test run: offline, without the model files, the suite reports the model tests
as skipped (never failed), and its output carries no native start-up chatter; the CLI keeps that
chatter out of a user's terminal too, unless -vv."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

NOISE = ("cuInit", "oneDNN", "absl::InitializeLog", "cudart_stub", "cpu_feature_guard")


def _pytest(test_file, env_extra: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """pytest on ``test_file`` with this folder's conftest as a plugin, models nowhere to be found."""
    empty = tmp_path / "no-models"
    empty.mkdir(exist_ok=True)
    env = {**os.environ, "REALTIME_MODEL_DIR": str(empty), "REALTIME_TEST_NO_DOWNLOAD": "1", "HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT / "tests"), **env_extra}
    env.pop("REALTIME_REQUIRE_MODELS", None) if "REALTIME_REQUIRE_MODELS" not in env_extra else None
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(test_file)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


PLANTED = '''
import subprocess, sys

def test_forgot_to_ask_for_models_dir():
    # What a test sees when a command it ran had no model files (realtime/model/files.py's words).
    err = "stylize: error: cannot download https://x/magenta_fp16_transfer_1.tflite (offline); put it in /tmp"
    assert False, err

def test_a_real_failure_stays_a_failure():
    assert 1 == 2, "not about models"

def test_asks_properly(models_dir):
    pass
'''


def test_without_models_the_model_tests_skip_and_ci_still_fails_them(tmp_path):
    planted = tmp_path / "test_planted.py"
    planted.write_text(PLANTED)
    r = _pytest(planted, {}, tmp_path)
    assert "1 failed" in r.stdout and "2 skipped" in r.stdout, r.stdout + r.stderr
    assert "FAILED" in r.stdout and "test_a_real_failure_stays_a_failure" in r.stdout
    assert "2 model tests did not run" in r.stdout  # the summary line counts both, forgotten or not
    ci = _pytest(planted, {"REALTIME_REQUIRE_MODELS": "1"}, tmp_path)
    assert "2 failed" in ci.stdout and "1 error" in ci.stdout, ci.stdout  # CI: missing models never pass as skips


def test_the_collection_carries_no_native_start_up_chatter(tmp_path):
    """A module marked gpu makes the collection ask TensorFlow for GPUs, outside per-test capture."""
    pytest.importorskip("tensorflow")
    planted = tmp_path / "test_gpu_probe.py"
    planted.write_text("import pytest\n\n@pytest.mark.gpu\ndef test_on_a_gpu():\n    pass\n")
    env = {"TF_CPP_MIN_LOG_LEVEL": "", "GRPC_VERBOSITY": ""}  # unset: conftest must set them itself
    r = _pytest(planted, env, tmp_path)
    out = r.stdout + r.stderr
    assert "1 skipped" in r.stdout or "1 passed" in r.stdout, out
    assert not [n for n in NOISE if n in out], out


@pytest.mark.parametrize("argv, expected", [
    ([], "3"),  # quiet by default
    (["-v"], "3"),  # -v: more of our own lines, still no native chatter
    (["-vv"], None),  # debugging: TensorFlow's own level
])
def test_the_cli_quiets_tensorflow_before_importing_it_unless_vv(monkeypatch, capsys, argv, expected):
    from realtime import cli

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.main([*argv, "styles", "list"]) == 0
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == expected


def test_the_cli_keeps_a_users_own_log_level(monkeypatch, capsys):
    from realtime import cli

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert cli.main(["styles", "list"]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_verbosity_is_counted_before_argparse():
    from realtime.logs import verbosity

    assert verbosity(["live"]) == 0 and verbosity(["-v", "live"]) == 1 and verbosity(["live", "-vv"]) == 2
    assert verbosity(["--verbose", "-v", "image"]) == 2 and verbosity(["image", "--", "-vv"]) == 0
    assert verbosity(["--version"]) == 0


def test_a_tensorflow_command_with_v_shows_no_native_chatter(models_dir, tmp_path):
    """End to end, as a user types it: ``-v`` (our own lines, with names) and the tf backend."""
    from conftest import content_image

    from realtime.io.images import write_image

    src = write_image(tmp_path / "in.png", content_image(64, 48))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}
    r = subprocess.run([sys.executable, "-m", "realtime", "-v", "image", str(src), "--style", "mosaic", "-o",
                        str(tmp_path / "out.png"), "--size", "32", "--backend", "tf"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "INFO realtime" in r.stderr  # -v's own lines are there
    assert not [n for n in NOISE if n in r.stderr], r.stderr
