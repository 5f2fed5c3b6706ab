"""The control page's server: a real uvicorn on 127.0.0.1 beside a running show (fake stylizer).

Streams are read with bounded sizes and timeouts (PITFALLS 12); every bad request listed in the
issue gets its 4xx and changes nothing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from liveshow import AUTH, TOKEN, Show
from test_images import png_declaring

from realtime.core.controller import Controller
from realtime.web.library import StyleLibrary
from realtime.web.server import WebServer, parse_web, pick_token


@pytest.fixture
def show(tmp_path):
    s = Show(tmp_path)
    yield s
    s.stop()


def post(show, name, json=None, **kw):
    return requests.post(f"{show.url}/api/actions/{name}", json=json, headers={**AUTH, **kw.pop("headers", {})}, timeout=20, **kw)


def read_parts(resp, n: int, timeout_s: float = 10.0, pause_s: float = 0.0) -> list[bytes]:
    """The first ``n`` JPEGs of an MJPEG response (bounded in bytes and time)."""
    buf, parts, deadline = b"", [], time.monotonic() + timeout_s
    for chunk in resp.iter_content(4096):
        buf += chunk
        while True:
            head = buf.find(b"\r\n\r\n")
            if head < 0 or b"Content-Length:" not in buf[:head]:
                break
            length = int(buf[:head].split(b"Content-Length:")[1].split(b"\r\n")[0])
            if len(buf) < head + 4 + length:
                break
            parts.append(buf[head + 4: head + 4 + length])
            buf = buf[head + 4 + length + 2:]
            if pause_s:
                time.sleep(pause_s)
        if len(parts) >= n or time.monotonic() > deadline or len(buf) > 5_000_000:
            break
    return parts[:n]


def test_every_route_needs_the_token(show):
    for path in ("/api/status", "/api/events", "/api/actions", "/api/styles", "/api/styles/0/thumb.jpg", "/stream.mjpg", "/"):
        assert requests.get(show.url + path, timeout=10).status_code == 401, path
        assert requests.get(show.url + path, headers={"Authorization": "Bearer wrong-token"}, timeout=10).status_code == 401
    r = requests.post(f"{show.url}/api/actions/next_style", timeout=10)
    assert r.status_code == 401 and "token" in r.json()["error"]
    assert show.controller.state.style_index == 0  # nothing changed
    assert requests.get(f"{show.url}/?token=nope", timeout=10).status_code == 401
    # The page URL with the token: a cookie, and the token leaves the address bar.
    session = requests.Session()
    r = session.get(f"{show.url}/?token={TOKEN}", timeout=10, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/" and "SameSite=lax" in r.headers["set-cookie"]
    page = session.get(show.url + "/", timeout=10)
    assert page.status_code == 200 and 'id="preview"' in page.text
    assert session.get(show.url + "/api/status", timeout=10).json()["styles"] == 2
    assert session.post(f"{show.url}/api/actions/next_style", timeout=10).json()["state"]["style"] == "blue"
    # Stream URLs for OBS carry the token in the query.
    with requests.get(f"{show.url}/stream.mjpg?token={TOKEN}", stream=True, timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert read_parts(r, 1)[0][:2] == b"\xff\xd8"


def test_actions_change_the_show_and_bad_requests_change_nothing(show):
    status = requests.get(f"{show.url}/api/status", headers=AUTH, timeout=10).json()
    for key in ("display_fps", "inference_fps", "latency_ms", "style", "strength", "recording", "uptime_s", "dropped"):
        assert key in status
    names = {a["name"] for a in requests.get(f"{show.url}/api/actions", headers=AUTH, timeout=10).json()}
    assert {"set_style", "set_strength", "set_cycle", "toggle_recording", "snapshot"} <= names
    r = post(show, "set_style", {"style": "blue"})
    assert r.status_code == 200 and r.json()["state"]["style"] == "blue"
    assert post(show, "set_strength", {"value": 0.6}).json()["result"] == 0.6
    assert post(show, "set_cycle", {"seconds": 12}).json()["state"]["cycle_s"] == 12
    before = show.controller.state
    bad = [
        ("no_such_action", {}, 404),
        ("set_strength", {"value": 5}, 400),  # out of range
        ("set_strength", {"value": "high"}, 400),  # wrong type
        ("set_strength", {"value": float("nan")}, 400),
        ("set_strength", {}, 400),  # missing
        ("set_strength", {"value": 1, "extra": 2}, 400),
        ("set_style_index", {"index": 99}, 400),
        ("start_recording", {"path": "/etc/owned.mp4"}, 400),  # no paths from the web
    ]
    for name, args, code in bad:
        r = post(show, name, data=__import__("json").dumps(args, allow_nan=True), headers={"Content-Type": "application/json"})
        assert r.status_code == code, (name, args, r.text)
        assert r.json()["error"] and "Traceback" not in r.text
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        r = requests.post(f"{show.url}/api/actions/set_strength", data=body, headers=AUTH, timeout=10)
        assert r.status_code == 400 and "JSON object" in r.json()["error"]
    assert requests.get(f"{show.url}/api/actions/next_style", headers=AUTH, timeout=10).status_code == 405  # no change by GET
    r = post(show, "next_style", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert show.controller.state == before
    assert show.thread.is_alive()  # the show never noticed


def test_recording_and_snapshots_from_the_page(show, tmp_path):
    r = post(show, "toggle_recording")
    assert r.status_code == 200 and r.json()["state"]["recording"].endswith(".mp4")
    time.sleep(0.5)
    done = post(show, "toggle_recording").json()["result"]
    assert done and Path(done).is_file() and Path(done).parent == tmp_path / "rec"
    snap = post(show, "snapshot").json()["result"]["files"]
    assert len(snap) == 2
    png = requests.get(show.url + snap[0], headers=AUTH, timeout=10)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG" and "attachment" in png.headers["content-disposition"]
    for name in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "other.png"):
        assert requests.get(f"{show.url}/api/snapshots/{name}", headers=AUTH, timeout=10).status_code == 404


def test_pages_toggling_the_recording_at_once_get_files_that_exist(show, tmp_path):
    """Issue 27: two pages pressing record at the same moment.  The toggles run one at a time on
    the show's thread: each answer names a file that exists once the show has ended."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6, thread_name_prefix="test-page") as pool:
        answers = list(pool.map(lambda _: post(show, "toggle_recording"), range(12)))
        answers += list(pool.map(lambda _: post(show, "toggle_recording"), range(5)))  # an odd count: left recording
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert show.controller.status()["recording"]
    show.stop()  # ends the recording still running
    files = sorted((tmp_path / "rec").glob("*.mp4"))
    named = {Path(r.json()["result"]) for r in answers}
    assert len(files) == 9 and named == set(files) and not [q for q in (tmp_path / "rec").iterdir() if ".part" in q.name]


def _png(w=48, h=32, colour=(10, 200, 30)) -> bytes:
    return cv2.imencode(".png", np.full((h, w, 3), colour, np.uint8))[1].tobytes()


def test_uploaded_photo_becomes_a_style_at_once(show):
    data = _png()
    r = requests.post(f"{show.url}/api/styles", data=data, headers={**AUTH, "Content-Type": "image/png"}, timeout=30)
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["name"].startswith("upload-") and added["index"] == 2
    listing = requests.get(f"{show.url}/api/styles", headers=AUTH, timeout=10).json()
    assert [s["name"] for s in listing] == ["red", "blue", added["name"]]
    thumb = requests.get(show.url + listing[2]["thumb"], headers=AUTH, timeout=10)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert post(show, "set_style_index", {"index": 2}).json()["state"]["style"] == added["name"]
    shown = show.app.stats.shown
    deadline = time.monotonic() + 5
    while show.app.stats.shown < shown + 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert show.thread.is_alive() and show.app._last.style == added["name"]  # the new style is on screen
    again = requests.post(f"{show.url}/api/styles", data=data, headers=AUTH, timeout=30)
    assert again.status_code == 200 and again.json() == {**added, "new": False}
    files = sorted(p.name for p in show.styles_dir.iterdir())
    assert files == ["blue.png", "red.png", f"{added['name']}.png"]  # a hash name, nothing half-written


def test_bad_uploads_are_refused_and_nothing_is_stored(show):
    before = sorted(show.styles_dir.iterdir())
    big = b"\xff\xd8\xff" + b"0" * 300_000
    cases = [
        (big, {}, 413),
        (b"this is not an image at all", {}, 400),
        (b"", {}, 400),
        (_png(8, 8), {}, 400),  # decodes, but too small to be a style
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, {}, 400),  # a PNG header with nothing behind it
        (png_declaring(30000, 30000), {}, 400),  # 110 KB declaring 2.7 GB of pixels: refused from its header
        (_png(1, 1), {}, 400),
    ]
    for body, headers, code in cases:
        r = requests.post(f"{show.url}/api/styles", data=body, headers={**AUTH, **headers}, timeout=30)
        assert r.status_code == code, (code, r.text)
        assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]
    r = requests.post(f"{show.url}/api/styles", data=png_declaring(30000, 30000), headers=AUTH, timeout=30)
    assert "30000x30000 pixels (900 MP): images of at most 50 MP" in r.json()["error"]
    r = requests.post(f"{show.url}/api/styles", data=big, headers=AUTH, timeout=30)
    assert r.json()["error"] == "the image is larger than 0.19 MB"  # 200 000 bytes in the MB of upload_mb (once "16 MB" for 15)
    # Chunked, with no Content-Length: counted as it arrives.
    r = requests.post(f"{show.url}/api/styles", data=iter([b"\xff\xd8\xff" + b"1" * 100_000] * 3), headers=AUTH, timeout=30)
    assert r.status_code == 413
    # A client's file name or path is never used.
    r = requests.post(f"{show.url}/api/styles?name=../../evil", files={"file": ("../../evil.png", _png())}, headers=AUTH, timeout=30)
    assert r.status_code in (400, 201)
    assert not any("evil" in p.name for p in show.styles_dir.parent.rglob("*"))
    after = [p for p in sorted(show.styles_dir.iterdir()) if p not in before]
    assert all(p.name.startswith("upload-") for p in after)
    assert not list(show.styles_dir.glob(".*"))  # no temp files left
    assert requests.post(f"{show.url}/api/styles", data=_png(), headers={**AUTH, "Origin": "http://evil.example"}, timeout=10).status_code == 403


def test_three_viewers_one_slow_and_the_client_limit(tmp_path):
    show = Show(tmp_path, max_clients=3)
    try:
        results: dict[str, list[bytes]] = {}

        def watch(name, n, pause):
            with requests.get(f"{show.url}/stream.mjpg", headers=AUTH, stream=True, timeout=10) as r:
                results[name] = read_parts(r, n, timeout_s=6, pause_s=pause)

        threads = [threading.Thread(target=watch, args=(f"c{i}", 40, 0.0), name=f"realtime-test-c{i}") for i in range(2)]
        threads.append(threading.Thread(target=watch, args=("slow", 4, 0.5), name="realtime-test-slow"))
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while show.preview.clients < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert show.preview.clients == 3
        r = requests.get(f"{show.url}/stream.mjpg", headers=AUTH, stream=True, timeout=10)
        assert r.status_code == 503 and "3 viewers" in r.json()["error"]
        r.close()
        shown0, t0 = show.app.stats.shown, time.monotonic()
        for t in threads:
            t.join(20)
        fps_with_viewers = (show.app.stats.shown - shown0) / (time.monotonic() - t0)
        assert len(results["c0"]) == 40 and len(results["c1"]) == 40 and 1 <= len(results["slow"]) <= 4
        for jpeg in results["c0"][:3] + results["slow"]:
            img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and max(img.shape[:2]) <= 96
        assert fps_with_viewers > 30  # the 60 fps show keeps going while a slow viewer lags
        assert show.preview.encoded < show.app.stats.shown  # once per frame at most, capped at 30 fps
        deadline = time.monotonic() + 5
        while show.preview.clients and time.monotonic() < deadline:
            time.sleep(0.05)
        assert show.preview.clients == 0  # disconnects are cleaned up
    finally:
        show.stop()


def test_a_stream_left_open_ends_with_the_show(tmp_path):
    show = Show(tmp_path)
    r = requests.get(f"{show.url}/stream.mjpg", headers=AUTH, stream=True, timeout=10)
    assert read_parts(r, 2)
    t0 = time.monotonic()
    show.stop()  # must not wait for the viewer to leave
    assert time.monotonic() - t0 < 8
    r.close()


def test_web_flags_and_token():
    assert parse_web("8080") == ("127.0.0.1", 8080)
    assert parse_web("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_web("[::1]:9000") == ("::1", 9000)
    from realtime.errors import UserError

    for bad in ("", "http", "host:99999", "8080:"):
        with pytest.raises(UserError):
            parse_web(bad)
    assert pick_token("configured-token") == "configured-token"
    assert len(pick_token(None)) >= 16 and pick_token(None) != pick_token(None)
    with pytest.raises(UserError):
        pick_token("short")


def test_access_line_and_qr_code(capsys):
    from realtime.web.server import is_loopback, print_access

    print_access("http://192.0.2.10:8080/?token=abc", qr=True)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "control page: http://192.0.2.10:8080/?token=abc"
    assert len(out.splitlines()) > 15 and ("\u2588" in out or "\u2580" in out)  # a QR code drawn in blocks
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_port_in_use_is_one_line(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    blocker = WebServer("127.0.0.1", 0)
    try:
        r = subprocess.run([sys.executable, "-m", "realtime", "live", "--headless", "--source", "synthetic",
                            "--web", f"127.0.0.1:{blocker.port}", "--max-frames", "5"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        blocker.stop()
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("stylize: error: cannot listen on")
    assert "Traceback" not in r.stderr


def test_an_upload_the_style_network_refuses_is_a_clear_error_and_not_kept(tmp_path):
    from realtime.errors import MediaError
    from realtime.web.library import UploadError

    def refuse(style):
        raise MediaError("style network cannot read it")

    c = Controller(["red"])
    lib = StyleLibrary(c, tmp_path / "styles", refuse)
    ok, png = cv2.imencode(".png", np.full((32, 32, 3), 128, np.uint8))
    with pytest.raises(UploadError) as err:
        lib.add(png.tobytes())
    assert err.value.status == 422 and "cannot use this image as a style" in str(err.value)
    assert not list((tmp_path / "styles").glob("upload-*")) and c.style_names == ["red"]


def test_the_printed_url_carries_any_token_intact():
    server = WebServer("127.0.0.1", 0)
    try:
        assert server.url("a+b#c&d").endswith("/?token=a%2Bb%23c%26d")
    finally:
        server.stop()


def read_events(resp, n: int, timeout_s: float = 10.0) -> list[tuple[str, dict]]:
    """The next ``n`` server-sent events of a streamed response as (kind, data), bounded in bytes and
    time (the request's read timeout bounds each wait); fewer when the stream ends."""
    import json

    out: list[tuple[str, dict]] = []
    buf, deadline = getattr(resp, "_sse_buf", b""), time.monotonic() + timeout_s
    chunks = getattr(resp, "_sse_chunks", None) or resp.iter_content(None)  # as it arrives, not 4 KB at a time
    resp._sse_chunks = chunks
    while len(out) < n and time.monotonic() < deadline and len(buf) < 1_000_000:
        while b"\n\n" in buf and len(out) < n:
            block, buf = buf.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line)
            if "data" in fields:
                out.append((fields.get("event", "message"), json.loads(fields["data"])))
        if len(out) >= n:
            break
        chunk = next(chunks, None)
        if chunk is None:
            break  # the stream ended
        buf += chunk
    resp._sse_buf = buf
    return out


def test_events_push_each_change_with_its_origin_to_every_page(tmp_path):
    show = Show(tmp_path)
    try:
        pages = [requests.get(f"{show.url}/api/events", headers=AUTH, stream=True, timeout=(5, 10)) for _ in range(2)]
        for r in pages:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            (kind, hello), = read_events(r, 1)
            assert kind == "status" and hello["action"] is None and hello["status"]["style"] == "red"
        assert post(show, "set_style", {"style": "blue"}).status_code == 200
        t0 = time.monotonic()
        show.keys.press("+")  # through the key table, on the live loop: origin "key"
        for r in pages:
            (k1, web), (k2, key) = read_events(r, 2)
            assert (k1, web["action"], web["origin"], web["changed"], web["status"]["style"]) == (
                "control", "set_style", "web", ["style_index"], "blue")
            assert (k2, key["action"], key["origin"], key["changed"], key["status"]["strength"]) == (
                "control", "change_strength", "key", ["strength"], 1.1)
            assert key["seq"] > web["seq"] and "display_fps" in key["status"]
        assert time.monotonic() - t0 < 1.0
        hub = show.web.state.events
        hub.figures_every_s = 0.2  # the live figures between changes; a page that left is noticed at the next send
        assert hub.pages == 2
        gone = requests.get(f"{show.url}/api/events", headers=AUTH, stream=True, timeout=(5, 10))
        (_, hello), (kind, figures) = read_events(gone, 2)
        assert kind == "status" and figures["action"] is None and figures["status"]["shown"] > hello["status"]["shown"]
        assert hub.pages == 3
        gone.close()
        deadline = time.monotonic() + 5
        while hub.pages > 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.pages == 2
        hub.max_pages = 2
        full = requests.get(f"{show.url}/api/events", headers=AUTH, timeout=10)
        assert full.status_code == 503 and "2 pages" in full.json()["error"]
    finally:
        t0 = time.monotonic()
        show.stop()  # the quit event ends every stream: the server stops at once, nothing left behind
        stopped_s = time.monotonic() - t0
    for r in pages:
        rest = read_events(r, 10_000, timeout_s=5)  # to the end of the stream (figures came every 0.2 s meanwhile)
        assert rest and rest[-1][1]["action"] == "quit" and rest[-1][1]["status"]["running"] is False
        r.close()
    assert stopped_s < 1.5  # uvicorn would wait 2 s for streams that do not end, then cancel them


def test_a_page_that_reads_nothing_loses_old_events_and_never_slows_the_show():
    """Per-page bounded queues on the server's loop: 500 changes from another thread take no longer
    with a stalled page, the page keeps the newest 32, and closing the hub ends its stream."""
    import asyncio
    import json

    from realtime.web.events import QUEUE_MESSAGES, EventHub, TooManyPages

    c = Controller(["red", "blue", "green"])
    result = {}

    async def main():
        hub = EventHub(c, max_pages=1)
        page = hub.register()
        with pytest.raises(TooManyPages):
            hub.register()

        def keys():
            t0 = time.perf_counter()
            for _ in range(500):
                c.do("next_style", origin="key")
            result["s"] = time.perf_counter() - t0

        t = threading.Thread(target=keys, name="realtime-test-keys")
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.01)  # the loop keeps running: the events are handed to it meanwhile
        await asyncio.sleep(0.05)
        result["queued"], result["dropped"] = page.queue.qsize(), page.dropped
        result["last"] = [page.queue.get_nowait() for _ in range(page.queue.qsize())][-1]

        async def read_all():
            return [m async for m in hub.stream(page)]

        reader = asyncio.create_task(read_all())  # a page waiting for the next change ...
        await asyncio.sleep(0.05)
        hub.close()  # ... when the server stops: its stream ends
        result["body"] = await asyncio.wait_for(reader, 2)
        result["pages"] = hub.pages

    asyncio.run(main())
    assert result["queued"] == QUEUE_MESSAGES and result["dropped"] == 500 - QUEUE_MESSAGES
    assert result["s"] < 2.0
    last = json.loads(result["last"].decode().split("data: ", 1)[1])
    assert last["seq"] == 500 and last["origin"] == "key" and last["status"]["style_index"] == 500 % 3
    body = result["body"]
    assert len(body) == 1 and body[0].startswith(b"retry: ") and b"event: status" in body[0] and result["pages"] == 0


@pytest.fixture
def server_log(caplog):
    """Every log record of the show's process, uvicorn's too (its loggers do not propagate to the
    root, where caplog listens): where a traceback of a failed request would land."""
    import logging

    caplog.set_level(logging.DEBUG)
    uvicorn = logging.getLogger("uvicorn")
    uvicorn.addHandler(caplog.handler)
    yield caplog
    uvicorn.removeHandler(caplog.handler)


def test_every_bad_request_is_a_json_4xx_and_never_a_traceback(show, server_log):
    """Issue 27: set_style_index -1 was a 500 (a format error in the range message), a 100k-deep
    body a 500 with a traceback in the show's log, a 50 MB body a message from Python's insides;
    Starlette's own 404/405 were plain text.  Every one is now a 4xx in the README's shape."""
    import json
    import logging

    caplog = server_log
    url = f"{show.url}/api/actions"
    before = show.controller.state
    cases = [
        ("set_style_index", json.dumps({"index": -1}).encode(), 400, "'index' must be >= 0, got -1"),
        ("set_style", json.dumps({"style": "-1"}).encode(), 400, "out of range"),
        ("set_style", json.dumps({"style": "\u00b2"}).encode(), 400, "unknown style"),  # isdigit(), yet int() refuses it
        ("set_style", json.dumps({"style": "9" * 5000}).encode(), 400, "unknown style"),
        ("set_strength", b"[" * 100_000 + b"]" * 100_000, 413, "larger than 64 KB"),
        ("set_strength", b"[" * 30_000 + b"]" * 30_000, 400, "nested too deeply"),
        ("set_strength", b'{"value": ' + b"1" * 5000 + b"}", 400, "a value in it is too long"),
        ("set_strength", b'{"value": ' + b"1" * 50_000_000 + b"}", 413, "larger than 64 KB"),
        ("set_strength", b'{"value": 0.5, "origin": "key"}', 400, "unexpected argument 'origin'"),
        ("set_style", b'{"name": "red"}', 400, "unexpected argument 'name'"),
        ("set_strength", b'{"value": 0.5,}', 400, "line 1 column 15"),
    ]
    for name, body, status, needle in cases:
        r = requests.post(f"{url}/{name}", data=body, headers={**AUTH, "Content-Type": "application/json"}, timeout=30)
        assert r.status_code == status and needle in r.json()["error"], (name, body[:40], r.status_code, r.text[:300])
        assert "sys.set_int_max_str_digits" not in r.text and "Traceback" not in r.text
    # A body with no Content-Length is counted as it arrives.
    r = requests.post(f"{url}/set_strength", data=iter([b" " * 50_000] * 3), headers=AUTH, timeout=30)
    assert r.status_code == 413 and r.json()["error"]
    # Starlette's own answers, in the same shape (405 keeps its Allow header).
    r = requests.get(f"{url}/next_style", headers=AUTH, timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "GET is not allowed on /api/actions/next_style" in r.json()["error"]
    r = requests.delete(f"{show.url}/api/styles", headers=AUTH, timeout=10)
    assert r.status_code == 405 and "DELETE is not allowed on /api/styles (allowed: GET, HEAD, POST)" == r.json()["error"]
    for path in ("/nowhere", "/api/styles/x/thumb.jpg", "/api/styles/" + "9" * 5000 + "/thumb.jpg", "/api/styles/99/thumb.jpg"):
        r = requests.get(show.url + path, headers=AUTH, timeout=10)
        assert r.status_code == 404 and r.json()["error"], path
    assert show.controller.state == before and show.thread.is_alive()
    traced = [rec for rec in caplog.records if rec.exc_info or "Traceback" in rec.getMessage()]
    assert not traced, [rec.getMessage() for rec in traced]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]  # bad requests are not the show's faults


def test_a_fault_inside_a_handler_is_one_log_line_and_a_json_500(show, server_log, monkeypatch):
    """The class behind the traceback: Starlette's handler for Exception re-raises for the server to
    log; the app's own middleware answers 500 in the error shape and logs one line, no traceback."""
    import logging

    def broken():
        raise RuntimeError("a bug in the listing")

    monkeypatch.setattr(show.library, "listing", broken)
    caplog = server_log
    r = requests.get(f"{show.url}/api/styles", headers=AUTH, timeout=10)
    assert r.status_code == 500 and r.json() == {"error": "internal error (logged); the show goes on"}
    lines = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(lines) == 1 and "RuntimeError: a bug in the listing" in lines[0].getMessage()
    assert not [rec for rec in caplog.records if rec.exc_info]
    assert requests.get(f"{show.url}/api/status", headers=AUTH, timeout=10).status_code == 200  # the server goes on


def test_the_action_listing_offers_only_what_the_handler_takes(show):
    """Issue 27: /api/actions advertised a `path` for start_recording that the handler refused.
    Every argument listed is accepted: each is sent with a value from its advertised type and range."""
    listing = requests.get(f"{show.url}/api/actions", headers=AUTH, timeout=10).json()
    start = next(a for a in listing if a["name"] == "start_recording")
    assert start["params"] == [] and "PATH" not in start["doc"]
    sample = {"int": lambda p: p["min"] or 0, "float": lambda p: p["min"] if p["min"] is not None else 0.5,
              "bool": lambda p: True, "str": lambda p: "red"}
    tried = 0
    for action in listing:
        for param in action["params"]:
            if action["name"] in ("set_open", "set_idle"):
                continue  # accepted like the others, but they close the show or swap its source
            if action["name"] == "midi_learn":
                continue  # needs a MIDI controller and an action's name (tests/test_midi.py)
            r = post(show, action["name"], {param["name"]: sample[param["type"]](param)})
            assert r.status_code == 200, (action["name"], param, r.text)
            tried += 1
    assert tried >= 6
    assert post(show, "set_paused", {"paused": False}).status_code == 200  # the loop paused it: frames to record
    r = post(show, "start_recording", {})
    assert r.status_code == 200 and r.json()["state"]["recording"].endswith(".mp4")
    time.sleep(0.5)
    assert post(show, "start_recording", {"path": "x.mp4"}).status_code == 400  # still refused, and no longer offered
    done = post(show, "stop_recording").json()["result"]
    assert Path(done).parent == show.styles_dir.parent / "rec"


def _global_ipv4() -> list[str]:
    """This machine's global IPv4 addresses per iproute2 (an oracle independent of the code under test)."""
    import shutil
    import subprocess

    if not shutil.which("ip"):
        pytest.skip("no `ip` command to check against")
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]


def test_listening_everywhere_prints_this_machines_network_address(capsys):
    """Issue 27: with the host name resolving to loopback (Debian's default, and this test machine's
    when it runs in a container), --web 0.0.0.0:PORT printed and QR-encoded http://127.0.0.1:PORT."""
    from realtime.web.server import print_access

    expected = _global_ipv4()
    server = WebServer("0.0.0.0", 0)
    try:
        urls = server.urls("tok-12345678")
        print_access(urls, everywhere=server.everywhere)
    finally:
        server.stop()
    out = capsys.readouterr().out
    hosts = [u.split("//")[1].split(":")[0] for u in urls]
    if expected:
        assert hosts[0] in expected and not [h for h in hosts if h.startswith("127.")], (hosts, expected)
        assert set(expected) <= set(hosts)  # every interface's own address is printed
        assert out.splitlines()[0] == f"control page: {urls[0]}" and "\u2580" in out  # and QR-encoded
    else:
        assert hosts == ["127.0.0.1"] and "no network address found" in out


def test_lan_addresses_outbound_first_then_interfaces_loopback_only_as_a_last_resort(monkeypatch, capsys):
    import io

    import segno

    import realtime.web.server as server_mod

    monkeypatch.setattr(server_mod, "_outbound_addresses", lambda: ["192.168.1.20"])
    monkeypatch.setattr(server_mod, "_interface_addresses", lambda: ["127.0.0.1", "10.0.0.5", "169.254.3.3", "192.168.1.20"])
    monkeypatch.setattr(server_mod, "_hostname_addresses", lambda: ["127.0.1.1"])
    assert server_mod.lan_addresses() == ["192.168.1.20", "10.0.0.5"]
    server = WebServer("0.0.0.0", 0)
    try:
        urls = server.urls("tok-12345678")
        assert urls == [f"http://192.168.1.20:{server.port}/?token=tok-12345678", f"http://10.0.0.5:{server.port}/?token=tok-12345678"]
        print_access = server_mod.print_access
        print_access(urls, everywhere=True)
        out = capsys.readouterr().out
        assert out.splitlines()[:2] == [f"control page: {urls[0]}", f"          or: {urls[1]}"]
        qr = io.StringIO()
        segno.make(urls[0], error="m").terminal(out=qr, compact=True)
        assert qr.getvalue() in out  # the QR code is the first address's

        # No network at all: loopback, said so, and no QR code a phone could not use anyway.
        for name in ("_outbound_addresses", "_interface_addresses"):
            monkeypatch.setattr(server_mod, name, lambda: ["127.0.0.1"])
        urls = server.urls("tok-12345678")
        assert urls == [f"http://127.0.0.1:{server.port}/?token=tok-12345678"]
        print_access(urls, everywhere=True)
        out = capsys.readouterr().out
        assert "no network address found on this machine" in out and "\u2580" not in out and "\u2588" not in out
    finally:
        server.stop()
    # A host given by hand is printed as it is; loopback by choice gets no QR code and no warning.
    with WebServer("127.0.0.1", 0) as local:
        assert local.urls() == [f"http://127.0.0.1:{local.port}/"] and not local.everywhere
        print_access(local.urls(), everywhere=local.everywhere)
    out = capsys.readouterr().out
    assert out == f"control page: http://127.0.0.1:{local.port}/\n"


def test_finding_the_outbound_address_sends_nothing(monkeypatch):
    """The UDP connect only asks the kernel for a route: no send, sendto or sendmsg on any socket."""
    import socket

    import realtime.web.server as server_mod

    sent = []

    class Watched(socket.socket):
        def send(self, *a, **k):
            sent.append(a)
            return super().send(*a, **k)

        def sendto(self, *a, **k):
            sent.append(a)
            return super().sendto(*a, **k)

        def sendmsg(self, *a, **k):
            sent.append(a)
            return super().sendmsg(*a, **k)

    monkeypatch.setattr(server_mod.socket, "socket", Watched)
    server_mod.lan_addresses()
    assert sent == []


def free_port() -> int:
    """A port nobody listens on now (for a show started in a child process)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_preview_shows_a_card_until_the_first_frame(tmp_path):
    """Issue 27: a page opened while the show starts got an empty preview box.  The network here
    takes 3 s a frame: the stream's first picture is the card, not a frame."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    port = free_port()
    calls = tmp_path / "calls"
    env = {**os.environ, "REALTIME_WEB_TOKEN": TOKEN, "REALTIME_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_live.py"), "--delay-s", "3", "--calls", str(calls),
                             "--", "live", "--headless", "--source", "synthetic:320x240", "--size", "64", "--style", "mosaic",
                             "--web", f"127.0.0.1:{port}", "--max-frames", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "control page: URL", printed once the server is up
        assert line.startswith("control page:"), (line, proc.stderr.read() if proc.poll() is not None else "")
        with requests.get(f"http://127.0.0.1:{port}/stream.mjpg", headers=AUTH, stream=True, timeout=10) as r:
            parts = read_parts(r, 1, timeout_s=5)
        assert calls.read_text() == "1", "a frame was stylized before the card was read: make the network slower"
        assert parts, "no picture from the preview before the first frame"
        card = cv2.imdecode(np.frombuffer(parts[0], np.uint8), cv2.IMREAD_COLOR)
        assert card.shape[1] == 320 and np.median(card) < 40 and (card.max(axis=2) > 200).sum() > 100
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_uploads_live_in_the_users_data_folder_not_in_every_later_show(tmp_path):
    """Issue 27: an uploaded photo was written into the styles folder and so joined every later
    run.  Now it goes to the user's data folder ($REALTIME_DATA_DIR here), is listed as uploaded,
    can still be picked by name, and the next show of "every style" does not include it."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    styles = tmp_path / "styles"
    styles.mkdir()
    for name, colour in (("red", (40, 40, 220)), ("blue", (220, 60, 30))):
        cv2.imwrite(str(styles / f"{name}.png"), np.full((64, 64, 3), colour, np.uint8))
    config = tmp_path / "show.yaml"
    config.write_text(f"styles:\n  dir: {styles}\n")
    data = tmp_path / "data"
    env = {**os.environ, "REALTIME_WEB_TOKEN": TOKEN, "REALTIME_DATA_DIR": str(data), "REALTIME_CACHE_DIR": str(tmp_path / "cache")}

    def live(*args, **kw):
        return subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_live.py"), "--", "live", "--config", str(config),
                                 "--headless", "--source", "synthetic:96x64", "--size", "32", *args],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    port = free_port()
    proc = live("--web", f"127.0.0.1:{port}")
    try:
        assert proc.stdout.readline().startswith("control page:"), proc.stderr.read() if proc.poll() is not None else ""
        url = f"http://127.0.0.1:{port}"
        r = requests.post(f"{url}/api/styles", data=_png(), headers=AUTH, timeout=30)
        assert r.status_code == 201, r.text
        name = r.json()["name"]
        listing = requests.get(f"{url}/api/styles", headers=AUTH, timeout=10).json()
        assert [(s["name"], s["uploaded"]) for s in listing] == [("blue", False), ("red", False), (name, True)]
        requests.post(f"{url}/api/actions/quit", headers=AUTH, timeout=10)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert sorted(p.name for p in styles.iterdir()) == ["blue.png", "red.png"]  # the styles folder is untouched
    assert [p.stem for p in (data / "styles").iterdir()] == [name]
    listed = subprocess.run([sys.executable, "-m", "realtime", "styles", "list", "--config", str(config)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    section = listed.stdout.split("uploaded from the control page", 1)[1].split("catalogue", 1)[0]
    assert name in section and name not in listed.stdout.split("uploaded from the control page", 1)[0]
    again = live("--max-frames", "3")  # every style again: the upload is not among them
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0 and "; 2 styles;" in err, err
    by_name = live("--max-frames", "3", "--style", name)  # but it can be chosen by name
    _, err = by_name.communicate(timeout=60)
    assert by_name.returncode == 0 and "; 1 styles;" in err, err


def test_the_upload_folder_defaults_to_the_users_data_folder(monkeypatch, tmp_path):
    import platformdirs

    from realtime.config import load_config

    monkeypatch.delenv("REALTIME_DATA_DIR", raising=False)
    assert load_config(None).upload_dir == Path(platformdirs.user_data_dir("realtime", appauthor=False)) / "styles"
    monkeypatch.setenv("REALTIME_DATA_DIR", str(tmp_path))
    assert load_config(None).upload_dir == tmp_path / "styles"
    assert load_config(None, {"styles.upload_dir": str(tmp_path / "u")}).upload_dir == tmp_path / "u"


def test_the_401_page_says_where_the_link_comes_from_and_reads_on_a_phone(show):
    """Issue 27: the 401 page was a bare white line on a phone."""
    for url, title in ((f"{show.url}/", "Open the control page from its link"),
                       (f"{show.url}/?token=an-old-token-123", "token is not this show")):
        r = requests.get(url, timeout=10, allow_redirects=False)
        assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
        page = r.text
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page  # sized for a phone
        assert "color-scheme: dark" in page and "background: #111" in page  # the control page's look
        assert title in page
        assert "QR code" in page and "terminal" in page and "stylize live --web" in page and "?token=" in page
        assert TOKEN not in page and "{title}" not in page and "{why}" not in page
        assert r.headers.get("cache-control") == "no-store"
    # The JSON API keeps its JSON errors.
    r = requests.get(f"{show.url}/api/status", timeout=10)
    assert r.status_code == 401 and "token" in r.json()["error"]
