"""Model catalogue and store: local folder, download from a local HTTP server, checksums."""

import shutil

import pytest

from realtime.errors import ModelError
from realtime.model.files import CATALOG, ModelStore, sha256_file


def test_catalog_has_the_four_official_files():
    assert set(CATALOG) == {"int8_prediction", "fp16_prediction", "int8_transfer", "fp16_transfer"}
    for m in CATALOG.values():
        assert len(m.sha256) == 64 and m.size > 100_000
        assert m.filename.startswith("magenta_arbitrary-image-stylization-v1-256_")


def test_local_folder_is_verified(models_dir, tmp_path):
    store = ModelStore(tmp_path, model_dir=models_dir, auto_download=False)
    p = store.path("fp16_transfer")
    assert p.parent == models_dir
    assert sha256_file(p) == CATALOG["fp16_transfer"].sha256


def test_download_from_local_server_into_cache(models_dir, tmp_path, http_server, monkeypatch):
    monkeypatch.delenv("REALTIME_MODEL_DIR")
    url = http_server(models_dir)
    store = ModelStore(tmp_path / "cache", base_url=url)
    p = store.path("int8_transfer")  # not in the cache yet: downloaded
    assert p == tmp_path / "cache" / "models" / CATALOG["int8_transfer"].filename
    assert sha256_file(p) == CATALOG["int8_transfer"].sha256
    assert not list(p.parent.glob("*.part*"))
    # A second store finds it in the cache with no server.
    store2 = ModelStore(tmp_path / "cache", base_url="http://127.0.0.1:9", auto_download=False)
    assert store2.path("int8_transfer") == p


def test_corrupted_download_is_rejected_and_nothing_is_kept(models_dir, tmp_path, http_server, monkeypatch):
    monkeypatch.delenv("REALTIME_MODEL_DIR")
    bad = tmp_path / "bad"
    bad.mkdir()
    name = CATALOG["int8_transfer"].filename
    data = bytearray((models_dir / name).read_bytes())
    data[1000] ^= 0xFF  # same size, one byte flipped
    (bad / name).write_bytes(bytes(data))
    store = ModelStore(tmp_path / "cache", base_url=http_server(bad))
    with pytest.raises(ModelError, match="wrong sha256"):
        store.fetch("int8_transfer")
    assert not any((tmp_path / "cache" / "models").iterdir())


def test_truncated_download_is_rejected(models_dir, tmp_path, http_server, monkeypatch):
    monkeypatch.delenv("REALTIME_MODEL_DIR")
    bad = tmp_path / "bad"
    bad.mkdir()
    name = CATALOG["int8_transfer"].filename
    (bad / name).write_bytes((models_dir / name).read_bytes()[:5000])
    store = ModelStore(tmp_path / "cache", base_url=http_server(bad))
    with pytest.raises(ModelError, match="stopped at 5000"):
        store.fetch("int8_transfer")
    assert not (tmp_path / "cache" / "models" / name).exists()


def test_unreachable_server_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("REALTIME_MODEL_DIR", raising=False)
    store = ModelStore(tmp_path / "cache", base_url="http://127.0.0.1:9")
    with pytest.raises(ModelError, match="cannot download .* put magenta_.*fp16_transfer_1.tflite in"):
        store.fetch("fp16_transfer")


def test_offline_without_files_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("REALTIME_MODEL_DIR", raising=False)
    (tmp_path / "empty").mkdir()
    store = ModelStore(tmp_path / "cache", model_dir=tmp_path / "empty", auto_download=False)
    with pytest.raises(ModelError) as exc:
        store.path("int8_prediction")
    msg = str(exc.value)
    assert CATALOG["int8_prediction"].filename in msg and str(tmp_path / "empty") in msg and "\n" not in msg


def test_wrong_checksum_in_local_folder_is_an_error(models_dir, tmp_path, monkeypatch):
    d = tmp_path / "models"
    shutil.copytree(models_dir, d)
    name = CATALOG["fp16_transfer"].filename
    (d / name).chmod(0o644)
    data = bytearray((d / name).read_bytes())
    data[-10] ^= 0x01
    (d / name).write_bytes(bytes(data))
    store = ModelStore(tmp_path / "cache", model_dir=d, auto_download=False)
    with pytest.raises(ModelError, match="wrong sha256"):
        store.path("fp16_transfer")
    assert store.status("fp16_transfer")[0].startswith("corrupt")
    # `models fetch` puts a good copy into the cache: it serves from then on, the bad one named (fetch
    # once said ok while every run still failed on the folder's copy)
    (tmp_path / "cache" / "models").mkdir(parents=True)
    shutil.copy(models_dir / name, tmp_path / "cache" / "models" / name)
    assert store.path("fp16_transfer") == tmp_path / "cache" / "models" / name
    assert store.status("fp16_transfer") == ("ok", tmp_path / "cache" / "models" / name)
    (problem,) = store.problems("fp16_transfer")
    assert "wrong sha256" in problem and str(d / name) in problem


def test_a_model_folder_that_does_not_exist_is_an_error(tmp_path):
    """It was ignored in silence, and named as the place to put the files."""
    with pytest.raises(ModelError, match="--model-dir .*nowhere: no such folder"):
        ModelStore(tmp_path / "cache", model_dir=tmp_path / "nowhere")


def test_a_trickling_download_is_stopped(tmp_path, monkeypatch):
    """A server that sends a byte a second never trips the socket timeout: the download ran on with
    no end in sight.  Slower than MIN_RATE over a window, it is stopped in one line."""
    import http.server
    import threading
    import time

    from realtime.model import download as dl

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(dl, "SLOW_WINDOW_S", 0.5)
    monkeypatch.setattr(dl, "MIN_RATE", 1000)
    t0 = time.monotonic()
    try:
        with pytest.raises(ModelError, match="is too slow .*bytes/s.*stopped, try again"):
            dl.download(f"http://127.0.0.1:{server.server_address[1]}/m.tflite", tmp_path / "m.tflite", error=ModelError)
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - t0 < 5 and not list(tmp_path.iterdir())
