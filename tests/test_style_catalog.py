"""``stylize styles fetch`` against a local HTTP server; ``styles list``."""

import hashlib
import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, content_image
from test_images import png_declaring

from realtime.errors import ConfigError
from realtime.io.images import write_image
from realtime.model.style_catalog import DEFAULT_CATALOG, fetch_styles, load_catalog


def _catalog(tmp_path, base, entries):
    f = tmp_path / "catalog.yaml"
    f.write_text(yaml.safe_dump({"styles": [
        {"name": n, "title": n, "artist": "test", "year": "2026", "url": f"{base}/{file}", "sha256": sha, "licence": "test"}
        for n, file, sha in entries
    ]}))
    return f


def test_shipped_catalogue_parses_and_has_checksums():
    entries = load_catalog(DEFAULT_CATALOG)
    assert len(entries) >= 4
    assert sum(1 for e in entries if e.sha256) >= 4
    assert all(e.url.startswith("https://") and e.licence for e in entries)


def test_fetch_checks_sha256_and_images(tmp_path, http_server):
    served = tmp_path / "served"
    served.mkdir()
    write_image(served / "good.png", content_image(128, 128))
    write_image(served / "small.png", content_image(16, 16))  # a style may be 16x16 (once "smaller than 64 px")
    (served / "huge.png").write_bytes(png_declaring(10000, 10000))  # once "not an image"
    (served / "text.png").write_text("not an image")
    good_sha = hashlib.sha256((served / "good.png").read_bytes()).hexdigest()
    base = http_server(served)
    cat = load_catalog(_catalog(tmp_path, base, [
        ("good", "good.png", good_sha),
        ("tampered", "good.png", "0" * 64),
        ("text", "text.png", None),
        ("gone", "missing.png", None),
        ("small", "small.png", None),
        ("huge", "huge.png", None),
    ]))
    dest = tmp_path / "styles"
    written, errors = fetch_styles(dest, [], cat)
    assert written == [dest / "good.png", dest / "small.png"]
    assert len(errors) == 4
    assert any("wrong sha256" in e for e in errors)
    assert any(e.startswith("text: downloaded file rejected:") and "not a readable image" in e for e in errors), errors
    assert any("10000x10000 pixels (100 MP): images of at most 50 MP" in e for e in errors), errors
    assert any("404" in e or "Not Found" in e for e in errors)
    assert sorted(p.name for p in dest.iterdir()) == ["good.png", "small.png"]  # nothing partial left


@pytest.mark.parametrize("text, says", [
    ("styles: 3\n", "must be a mapping with a list under 'styles'"),
    ("- 3\n", "must be a mapping with a list under 'styles'"),
    ("styles: [3]\n", "entry 0 is not a mapping"),
    ("styles:\n  - {name: ../evil, url: 'https://x/a.jpg'}\n", "name '../evil' must be a plain file name"),
    ("styles:\n  - {name: [a], url: 'https://x/a.jpg'}\n", "'name' must be text"),
    ("styles:\n  - {name: a, url: 'file:///etc/passwd'}\n", "must be http(s)://"),
    ("styles: [\n", "not valid YAML"),
    (b"\xff\xfe binary", "not UTF-8 text"),
])
def test_a_malformed_catalogue_is_one_line(tmp_path, text, says):
    """Each of these was a traceback (or a file written outside --dest); the CLI says it in one line."""
    cat = tmp_path / "c.yaml"
    cat.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_catalog(cat)
    r = subprocess.run([sys.executable, "-m", "realtime", "styles", "list", "--catalog", str(cat)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr


def test_styles_fetch_and_list_cli(tmp_path, http_server):
    served = tmp_path / "served"
    served.mkdir()
    write_image(served / "a.png", content_image(100, 100))
    cat = _catalog(tmp_path, http_server(served), [("alpha", "a.png", None)])
    dest = tmp_path / "styles"
    env = {**os.environ}
    r = subprocess.run([sys.executable, "-m", "realtime", "styles", "fetch", "--catalog", cat, "--dest", dest],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (dest / "alpha.png").is_file()
    r = subprocess.run([sys.executable, "-m", "realtime", "styles", "list", "--catalog", cat, "--dest", dest],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert "alpha" in r.stdout and "present" in r.stdout
    r = subprocess.run([sys.executable, "-m", "realtime", "styles", "fetch", "nope", "--catalog", cat, "--dest", dest],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "not in the style catalogue" in r.stderr


def test_offline_fetch_says_where_to_put_the_file_by_hand(tmp_path):
    """Issue 27: offline, `styles fetch` said only that the download failed."""
    cat = tmp_path / "cat.yaml"
    cat.write_text("styles:\n  - name: far\n    url: http://127.0.0.1:9/far-away.jpg\n")  # nothing listens on port 9
    dest = tmp_path / "my styles"
    r = subprocess.run([sys.executable, "-m", "realtime", "styles", "fetch", "--catalog", cat, "--dest", dest],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("failed")]
    assert len(lines) == 1, r.stderr
    assert "cannot download http://127.0.0.1:9/far-away.jpg" in lines[0]
    assert f"save it as far.jpg in {dest.resolve()}/" in lines[0]  # the file name and the folder
