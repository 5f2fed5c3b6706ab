"""Shared fixtures: the real models (from ../shared/models or $REALTIME_MODEL_DIR), generated media,
a local HTTP server, and a check that no test leaves a thread running.

Tests need no camera, GPU or network.  Where the model files are missing the model tests skip,
unless REALTIME_REQUIRE_MODELS=1 (CI), where they fail: a test that needs them asks for the
``models_dir`` fixture (or one built on it); a test that forgot to, and fails only because a command
it ran could not find the model files, is reported as skipped for the same reason (see
:func:`pytest_runtest_makereport`), never as a failure of the program.

TensorFlow's native start-up chatter (CUDA probing, oneDNN notes) is kept out of the output: the
environment that quiets it is set here, before anything imports TensorFlow, and passed on to the
commands the tests run.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import os
import re
import threading
import time
from pathlib import Path

# Before numpy, pytest plugins or a test module can import TensorFlow: it reads these once, at import
# (a developer's own values win).  Subprocesses inherit them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
for _noisy in ("tensorflow", "absl"):  # their Python-side warnings (absl's handler goes through logging)
    logging.getLogger(_noisy).setLevel(logging.ERROR)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MEDIA = SHARED / "media"
DEFAULT_MODELS = SHARED / "models"
REQUIRED_FILES = (
    "magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite",
    "magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite",
    "magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite",
)


@functools.lru_cache(maxsize=None)
def _models_dir() -> Path | None:
    """The real models: $REALTIME_MODEL_DIR, ../shared/models, or downloaded into the user's cache
    with the program's own checked download, where the network allows.  Decided once per session,
    from the environment the session started with (tests change REALTIME_MODEL_DIR as they run)."""
    d = Path(os.environ.get("REALTIME_MODEL_DIR") or DEFAULT_MODELS)
    if all((d / f).is_file() for f in REQUIRED_FILES):
        return d.resolve()
    return _download_models()


def _download_models() -> Path | None:
    if os.environ.get("REALTIME_TEST_NO_DOWNLOAD") == "1":
        return None
    from realtime.config import default_cache_dir
    from realtime.model.files import REQUIRED, ModelStore

    cache = Path(os.environ.get("REALTIME_TEST_MODEL_CACHE") or Path(default_cache_dir()) / "models")
    store = ModelStore(cache_dir=cache.parent, model_dir=None, auto_download=True)
    try:
        for key in (*REQUIRED, "int8_transfer"):
            store.path(key)
    except Exception:  # noqa: BLE001 - offline: the model tests are reported as not run
        return None
    d = store.cache_dir
    return d if all((d / f).is_file() for f in REQUIRED_FILES) else None


def pytest_terminal_summary(terminalreporter):
    """One line that says how many tests needed the model files and did not run, and how to run them."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "model files not found" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} model tests did not run: the model files were not found and could not be downloaded; "
            f"set REALTIME_MODEL_DIR to a folder with them (see `stylize models list`)", yellow=True)


MODELS_MISSING = f"model files not found (set REALTIME_MODEL_DIR or put them in {DEFAULT_MODELS})"

#: What ``stylize`` says when it has no model files and cannot download them (realtime/model/files.py).
_CLI_MODELS_MISSING = re.compile(r"model file \S+\.tflite not found|cannot download \S+\.tflite")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The folder with the real model files; the test skips without them (fails under REALTIME_REQUIRE_MODELS=1)."""
    d = _models_dir()
    if d is None:
        if os.environ.get("REALTIME_REQUIRE_MODELS") == "1":
            pytest.fail(MODELS_MISSING)
        pytest.skip(MODELS_MISSING)
    return d


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed only because a command it ran had no model files, where there are none to
    give it, is reported as skipped like every model test (the ``models_dir`` fixture is the proper way
    to ask; this catches the ones that forgot).  Under REALTIME_REQUIRE_MODELS=1 it stays a failure."""
    outcome = yield
    report = outcome.get_result()
    if (report.when != "call" or not report.failed or os.environ.get("REALTIME_REQUIRE_MODELS") == "1"
            or not _CLI_MODELS_MISSING.search(str(report.longrepr)) or _models_dir() is not None):
        return
    path, line, _ = item.location
    report.outcome = "skipped"
    report.longrepr = (str(item.path), (line or 0) + 1, f"Skipped: {MODELS_MISSING}; the test ran a command that needed them")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and data folders (uploads land there, never in the user's);
    the model folder comes from the environment."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("REALTIME_CACHE_DIR", str(cache))
    monkeypatch.setenv("REALTIME_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    d = _models_dir()
    if d is not None:
        monkeypatch.setenv("REALTIME_MODEL_DIR", str(d))
    else:
        monkeypatch.delenv("REALTIME_MODEL_DIR", raising=False)


@pytest.fixture(autouse=True)
def no_thread_leak():
    """Fail a test that leaves a non-daemon or a project thread running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive() and _ours(t)]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


def _ours(t: threading.Thread) -> bool:
    return t.name.startswith("realtime") or not t.daemon


@pytest.fixture(scope="session")
def cfg_factory(models_dir):
    from realtime.config import load_config

    def make(**overrides):
        o = {"models.model_dir": str(models_dir), "models.auto_download": False}
        o.update(overrides)
        return load_config(None, o)

    return make


@pytest.fixture(scope="session")
def tf_stylizer(models_dir):
    from realtime.model.backends.tf_backend import TFStylizer

    return TFStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1])


@pytest.fixture(scope="session")
def tflite_stylizer(models_dir):
    from realtime.model.backends.tflite_backend import TFLiteStylizer

    return TFLiteStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1])


@pytest.fixture(scope="session")
def ov_stylizer(models_dir, tmp_path_factory):
    """OpenVINO in float32 (the reference the other backends are held to: no bf16 even where
    ``auto`` would pick it)."""
    pytest.importorskip("openvino")
    from realtime.model.backends.openvino_backend import OpenVINOStylizer

    return OpenVINOStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], precision="float32",
                            cache_dir=tmp_path_factory.mktemp("ov"))


def photos(w: int, h: int, n: int) -> np.ndarray:
    """``n`` different RGB pictures at w x h: the shared photos (flipped for more), else generated ones."""
    from realtime.io.images import read_image, resize

    files = sorted((MEDIA / "content").glob("*.jpg"))
    pics = [resize(read_image(f), (w, h)) for f in files] or [content_image(w, h, i) for i in range(2)]
    pics += [p[:, ::-1] for p in pics]
    return np.ascontiguousarray(np.stack([pics[i % len(pics)] for i in range(n)]))


def check_matches_openvino(stylizer, ov_stylizer, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """``stylizer`` (float path) within the project's 2e-3 of openvino float32 at w x h, batch 1 and
    4 with a code per frame, and its style codes openvino's own (one id, one cache).  Returns the
    frames and codes it used."""
    code = stylizer.style_code(style_photo())
    assert np.array_equal(code, ov_stylizer.style_code(style_photo()))
    assert stylizer.style_model_id == ov_stylizer.style_model_id
    codes = np.stack([code, code * 0.5, code, -0.3 * code])
    images = photos(w, h, 4).astype(np.float32) / 255
    ours = stylizer.transfer(images, codes)
    ref = ov_stylizer.transfer(images, codes)
    assert ours.shape == ref.shape == (4, h, w, 3) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 2e-3
    assert np.abs(ref - images).mean() > 0.05  # stylized: a pass-through could not match
    one = stylizer.transfer(images[1:2], codes[1])
    assert np.abs(one[0] - ref[1]).max() <= 2e-3
    return photos(w, h, 4), codes


def style_photo() -> np.ndarray:
    """A real painting (the shared wave) where present, else a generated picture."""
    from realtime.io.images import read_image

    p = MEDIA / "styles" / "wave.jpg"
    return read_image(p) if p.is_file() else content_image(256, 256, 9)


def content_image(width: int = 320, height: int = 240, index: int = 5) -> np.ndarray:
    from realtime.io.synthetic import pattern_frame

    return pattern_frame(index, width, height)


@pytest.fixture
def content_path(tmp_path) -> Path:
    from realtime.io.images import write_image

    return write_image(tmp_path / "content.png", content_image())


@pytest.fixture
def real_photo() -> Path:
    p = MEDIA / "content" / "chicago.jpg"
    if not p.is_file():
        pytest.skip("shared media not present")
    return p


@pytest.fixture
def real_painting() -> Path:
    p = MEDIA / "styles" / "wave.jpg"
    if not p.is_file():
        pytest.skip("shared media not present")
    return p


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_server():
    """Start a static file server on 127.0.0.1 for a folder: ``url = http_server(folder)``."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        t = threading.Thread(target=srv.serve_forever, name="realtime-test-http", daemon=True)
        t.start()
        servers.append((srv, t))
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv, t in servers:
        srv.shutdown()
        srv.server_close()
        t.join(5)


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 to /dev/null for the block: what native code writes there before its own
    logging is set up (TensorFlow's "All log messages before absl::InitializeLog()" lines ignore
    TF_CPP_MIN_LOG_LEVEL).  Collection runs outside pytest's per-test capture, so this is where it shows."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _tf_sees_gpu() -> bool:
    try:
        with native_stderr_silenced():
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    """GPU-only tests skip cleanly where TensorFlow sees no GPU."""
    if any("gpu" in item.keywords for item in items) and not _tf_sees_gpu():
        skip = pytest.mark.skip(reason="no GPU visible to TensorFlow")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def signal_when_file_appears(args: list[str], folder: Path, pattern: str, sig: int, settle_s: float = 0.5):
    """Run ``python -m realtime ARGS``; once ``folder/pattern`` exists (the job's temp output), wait
    ``settle_s`` and send ``sig``.  Returns (exit code, stderr)."""
    code, err, _ = signal_and_time(args, folder, pattern, sig, settle_s)
    return code, err


def signal_and_time(args: list[str], folder: Path, pattern: str, sig: int, settle_s: float = 0.5, appear_s: float = 120.0):
    """:func:`signal_when_file_appears`, also returning the seconds from the signal to the exit."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "realtime", *map(str, args)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + appear_s
        while not list(folder.glob(pattern)) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert list(folder.glob(pattern)), f"{pattern} never appeared: {proc.communicate()[1] if proc.poll() is not None else ''}"
        time.sleep(settle_s)
        assert proc.poll() is None, "the run ended before the signal: make it longer"
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err, elapsed
