"""Bad input and hostile environments: one clear line, a non-zero exit, no traceback, nothing of
the user's lost or half-written.  Most checks need no model files: they fail before the network
loads, which is the point."""

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, signal_when_file_appears
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime import cli
from realtime.config import RANGES
from realtime.io.images import write_image
from realtime.io.paths import OutputError, publish, temp_path_for
from realtime.io.recovery import remove_stale_parts
from realtime.io.synthetic import write_clip


def stylize(*args, env=None, cwd=ROOT, timeout=120, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=e, **kw)


def one_error_line(stderr: str, needle: str = "") -> str:
    assert "Traceback" not in stderr, stderr
    errs = [l for l in stderr.splitlines() if "error:" in l]
    assert len(errs) == 1, stderr
    assert needle in errs[0], errs[0]
    return errs[0]


@pytest.fixture
def no_jobs(monkeypatch):
    """Run the CLI's parsing and config layer only: the jobs are replaced by recorders."""
    calls = []

    def fake(name):
        def run(cfg, job):
            calls.append((name, cfg, job))
            return 0
        return run

    import realtime.bench
    import realtime.jobs.image
    import realtime.jobs.video
    import realtime.live.run

    monkeypatch.setattr(realtime.live.run, "run_live", fake("live"))
    monkeypatch.setattr(realtime.jobs.video, "run_video", fake("video"))
    monkeypatch.setattr(realtime.jobs.image, "run_image", fake("image"))
    monkeypatch.setattr(realtime.bench, "run_bench", fake("bench"))
    return calls


def run_main(argv, capsys):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["live", "--size", "0"], "live.size"),
    (["live", "--size", "-5"], "live.size"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--size", "-1"], "video.size"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--size", "8"], "video.size"),
    (["image", "a.png", "-o", "b.png", "--style", "x", "--strength", "nan"], "styles.strength"),
    (["image", "a.png", "-o", "b.png", "--style", "x", "--strength", "inf"], "styles.strength"),
    (["live", "--threads", "-1"], "engine.threads"),
    (["live", "--stability", "1.5"], "live.stability"),
    (["live", "--smooth", "1.5"], "live.stability"),  # the old name still checks like the new one
    (["live", "--smooth", "0.5", "--stability", "0.5"], "--stability only"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--preset", "warp"], "video.preset"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--start", "nan"], "--start"),
    (["live", "--max-frames", "-1"], "live.max_frames"),
    (["live", "--size", "abc"], "invalid int value"),
    (["bench", "--sizes", "0x0"], "multiples of 4"),
    # issue 27: "--switch-every 0" was told "several --style values need --switch-every SECONDS"
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--style", "y", "--switch-every", "0"], "--switch-every must be a number of seconds > 0, got 0.0"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--style", "y", "--switch-every", "-2"], "--switch-every must be a number of seconds > 0"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--style", "y", "--switch-every", "nan"], "--switch-every must be a number of seconds > 0"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--switch-every", "0"], "--switch-every must be a number of seconds > 0"),
    (["video", "a.mp4", "-o", "b.mp4", "--style", "x", "--style", "y"], "several --style values need --switch-every SECONDS"),
])
def test_values_that_make_no_sense_are_refused(no_jobs, capsys, argv, needle):
    code, err = run_main(argv, capsys)
    assert code == 2 and not no_jobs
    one_error_line(err, needle)


@pytest.mark.parametrize("text, needle", [
    ("engine:\n  max_size: 0\n", "engine.max_size"),
    ("video:\n  preset: fastest\n", "video.preset"),
    ("live:\n  stability: 2\n", "live.stability"),
    ("live:\n  smoothing: 0.5\n", "now 'live.stability'"),
    ("live: [1, 2]\n", "must be a mapping"),
    ("- just\n- a list\n", "mapping at the top level"),
    ("styles:\n  strength: .nan\n", "finite"),
])
def test_config_values_are_checked_like_flags(no_jobs, capsys, tmp_path, text, needle):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    code, err = run_main(["live", "--config", f], capsys)
    assert code == 2
    one_error_line(err, needle)


@pytest.mark.parametrize("text, flags, needle", [
    ("live: [1, 2]\n", ["--source", "synthetic"], "config section 'live' must be a mapping"),
    ("live: [1, 2]\n", ["--headless"], "config section 'live' must be a mapping"),
    ("live: [1, 2]\n", ["--size", "256"], "config section 'live' must be a mapping"),
    ("live:\n  size: big\n", ["--size", "384"], "config key 'live.size' must be int, got 'big'"),
    ("live:\n  size: big\n", ["--source", "synthetic", "--headless"], "config key 'live.size' must be int"),
    ("web: 5\n", ["--web", "8080"], "config section 'web' must be a mapping"),
])
def test_a_bad_config_file_is_refused_whatever_flags_come_with_it(no_jobs, capsys, tmp_path, text, flags, needle):
    """Issue 27: the file is checked whole before a flag is applied: a flag that sets a key of a
    broken section (or the broken key itself) used to replace it and run with rc 0."""
    f = tmp_path / "c.yaml"
    f.write_text(text)
    code, err = run_main(["live", "--config", f, *flags], capsys)
    assert code == 2 and not no_jobs
    one_error_line(err, needle)


def test_output_names_carry_every_style_of_the_run(tmp_path):
    """Issue 27: --switch-every and --blend outputs were named after the first style only; now every
    style, joined by '+', cut with a hash past 80 bytes (two long combinations keep two names)."""
    from realtime.io.paths import MAX_LABEL_BYTES, output_label
    from realtime.jobs.video import VideoJob, output_pairs
    from realtime.model.styles import Style

    job = VideoJob(inputs=("clip.mp4",), styles=("waves", "dots"), out_dir=str(tmp_path), switch_every=2.0)
    styles = [Style("waves", tmp_path / "waves.jpg"), Style("dots", tmp_path / "dots.jpg")]
    assert output_pairs(job, [Path("clip.mp4")], styles) == [(Path("clip.mp4"), tmp_path / "clip-waves+dots.mp4")]
    assert output_label(["waves"]) == "waves"
    many = [f"a_rather_long_style_name_{i}" for i in range(8)]
    one, other = output_label(many), output_label(many[:-1] + ["something_else"])
    assert len(one.encode()) <= MAX_LABEL_BYTES and len(other.encode()) <= MAX_LABEL_BYTES
    assert one != other and one.startswith("a_rather_long_style_name_0+a_rather")
    assert len(output_label(["\u00e9" * 100]).encode()) <= MAX_LABEL_BYTES  # cut between characters, not inside one
    output_label(["\u00e9" * 100]).encode().decode("utf-8")


def test_long_legal_names_are_written(tmp_path):
    """A 250-byte output name is legal, but its temp name was not ("File name too long"): the temp
    name carries a cut stem that recovery still pairs (a recording and its source), and names made
    from a long content name stay within 255 bytes."""
    from realtime.io.parts import NAME_BYTES, new_temp, parse_part, part_stem
    from realtime.io.paths import atomic_write_bytes, derived_name

    for stem in ("a" * 246, "\u00e9" * 123, os.fsdecode(b"caf\xe9-" * 40), os.fsdecode(b"caf\xe9")):  # Latin-1 bytes too
        target = tmp_path / f"{stem}.mp4"
        tmp = new_temp(target, recoverable=True)
        part = parse_part(tmp)
        assert len(os.fsencode(tmp.name)) <= NAME_BYTES and part is not None and part.recoverable
        assert part.stem == part_stem(target) and part.suffix == ".mp4"
        source = parse_part(new_temp(tmp_path / f"{stem}.source.mp4", recoverable=True))
        assert source is not None and source.stem == part.stem + ".source"  # the pair recovery looks for
        assert atomic_write_bytes(tmp_path / f"{stem}.json", b"{}").read_bytes() == b"{}"
    named = derived_name(tmp_path, "b" * 250, "waves+dots", ".mp4")
    assert len(named.name.encode()) <= NAME_BYTES and named.name.endswith("-waves+dots.mp4")
    assert derived_name(tmp_path, "b" * 250, "waves", ".mp4") != derived_name(tmp_path, "b" * 249 + "c", "waves", ".mp4")
    assert derived_name(tmp_path, "clip", "waves", ".mp4") == tmp_path / "clip-waves.mp4"
    latin = derived_name(tmp_path, os.fsdecode(b"\xe9t\xe9" * 90), "waves", ".png")  # not UTF-8: once a traceback
    assert len(os.fsencode(latin.name)) <= NAME_BYTES and atomic_write_bytes(latin, b"x").read_bytes() == b"x"


def test_config_that_is_not_text_or_not_yaml(no_jobs, capsys, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes(b"\xff\xfe\x00binary\x89PNG")
    code, err = run_main(["live", "--config", f], capsys)
    assert code == 2
    one_error_line(err, "not UTF-8")
    f.write_text("live: {size: [unclosed\n")
    code, err = run_main(["live", "--config", f], capsys)
    assert code == 2
    one_error_line(err, "not valid YAML")
    # Keys YAML reads as something else, a key given twice (the first silently dropped), and a MIDI
    # table given as a config: each was a traceback or a quiet surprise.
    for text, needle in (("live:\n  on: true\n", "config key live.True is not a name (quote it"),
                         ("1: 2\n", "config key 1 is not a name"),
                         ("live:\n  size: 256\nlive:\n  size: 200\n", "the key 'live' is given twice (the second at line 3)"),
                         ((ROOT / "configs" / "midi-nanokontrol2.yaml").read_text(), "is this a MIDI table?")):
        f.write_text(text)
        code, err = run_main(["live", "--config", f], capsys)
        assert code == 2
        one_error_line(err, needle)
    from realtime.config import load_config

    f.write_text("live:\n  <<: {size: 200, fps: 12}\n  fps: 15\n")  # YAML's merge keys still merge (once "not valid YAML")
    assert (load_config(f).live.size, load_config(f).live.fps) == (200, 15)


def test_unattended_flags_live_in_the_config(no_jobs, capsys, tmp_path):
    f = tmp_path / "show.yaml"
    f.write_text("live:\n  headless: true\n  loop: true\n  keep_pace: true\n  fullscreen: true\n  record: true\n")
    code, err = run_main(["live", "--config", f, "--source", "clip.mp4"], capsys)
    assert code == 0, err
    live = no_jobs[0][1].live
    assert live.headless and live.loop and live.keep_pace and live.fullscreen and live.record
    assert live.source == "clip.mp4"


KEYS = sorted(RANGES) + ["engine.backend", "video.preset", "live.source", "live.overlay", "styles.dir", "nope.key", "live.nope"]
VALUES = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_fuzz_config_files_work_or_fail_in_one_line(no_jobs, capsys, data):
    nested: dict = {}
    for dotted, value in data.items():
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "c.yaml"
        f.write_text(yaml.safe_dump(nested))
        code, err = run_main(["live", "--config", f], capsys)
    assert code in (0, 2), err
    if code == 2:
        one_error_line(err)


FLAGS = {
    "live": ["--size", "--strength", "--stability", "--threads", "--max-frames", "--fps", "--width", "--height"],
    "video": ["--size", "--strength", "--stability", "--crf", "--batch", "--preset", "--start", "--end", "--switch-every"],
    "image": ["--size", "--strength", "--threads", "--backend", "--precision", "--device"],
}
FLAG_VALUES = st.one_of(
    st.integers(-1000, 100000).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "x", "-", "1e309", "0", "nan", "-inf", "medium", "tf", "gpu"]),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(sorted(FLAGS)), picks=st.lists(st.tuples(st.integers(0, 8), FLAG_VALUES), max_size=4))
def test_fuzz_flags_work_or_fail_in_one_line(no_jobs, capsys, cmd, picks):
    base = {"live": ["live"], "video": ["video", "a.mp4", "-o", "b.mp4", "--style", "x"],
            "image": ["image", "a.png", "-o", "b.png", "--style", "x"]}[cmd]
    argv = list(base)
    for i, value in picks:
        argv += [FLAGS[cmd][i % len(FLAGS[cmd])], value]
    code, err = run_main(argv, capsys)
    assert code in (0, 2), (argv, err)
    if code == 2:
        one_error_line(err)


def test_no_display_says_so_and_points_at_headless(tmp_path):
    env = {k: "" for k in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = stylize("live", "--source", "synthetic", env=env)
    assert r.returncode == 2
    one_error_line(r.stderr, "--headless")


def test_shipped_styles_are_found_from_any_folder(tmp_path):
    r = stylize("styles", "list", cwd=tmp_path)
    assert r.returncode == 0 and "mosaic" in r.stdout and "waves" in r.stdout, r.stdout + r.stderr
    from realtime.model.styles import find_style_images

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert find_style_images("mosaic", "styles")[0].path.is_file()
        assert len(find_style_images("styles", "styles")) >= 4  # "every style" when no local folder
    finally:
        os.chdir(cwd)


def test_offline_styles_fetch_leaves_no_empty_folder(tmp_path):
    dest = tmp_path / "new_styles"
    cat = tmp_path / "cat.yaml"
    cat.write_text("styles:\n  - name: far\n    url: http://127.0.0.1:9/none.jpg\n    filename: far.jpg\n"
                   "    artist: A\n    title: T\n    year: 1900\n    license: public domain\n")
    r = stylize("styles", "fetch", "--dest", dest, "--catalog", cat)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not dest.exists()


def test_folder_as_content_and_output_over_its_own_input(tmp_path):
    r = stylize("image", tmp_path, "--style", "mosaic", "-o", tmp_path / "o.png")
    assert r.returncode == 2
    one_error_line(r.stderr, "is a folder")
    src = write_image(tmp_path / "a.png", np.full((32, 32, 3), 90, np.uint8))
    before = src.read_bytes()
    r = stylize("image", src, "--style", "mosaic", "-o", src, "--overwrite")
    assert r.returncode == 2
    one_error_line(r.stderr, "would overwrite the input")
    assert src.read_bytes() == before


def test_unwritable_output_locations_fail_before_any_work(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("in the way")
    src = write_image(tmp_path / "a.png", np.full((32, 32, 3), 90, np.uint8))
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=2, width=64, height=48, fps=10, audio=False)
    cases = [
        ("image", src, "--style", "mosaic", "-o", blocker / "o.png"),
        ("image", src, "--style", "mosaic", "--out-dir", blocker / "out"),
        ("video", clip, "--style", "mosaic", "-o", blocker / "o.mp4"),
        ("video", clip, "--style", "mosaic", "--out-dir", blocker),
        ("live", "--source", "synthetic", "--headless", "--record", blocker / "r.mp4"),
    ]
    for args in cases:
        t0 = time.monotonic()
        r = stylize(*args, "--model-dir", tmp_path / "no_models", "--no-download")
        assert r.returncode == 2, (args, r.stderr)
        one_error_line(r.stderr, "is a file, not a folder")
        assert time.monotonic() - t0 < 30
    r = stylize("models", "fetch", env={"REALTIME_CACHE_DIR": str(blocker / "cache"), "REALTIME_MODEL_DIR": ""})
    assert r.returncode == 2 and "Traceback" not in r.stderr and "is a file, not a folder" in r.stderr


def test_a_recording_that_could_not_be_saved_is_refused_before_the_show(tmp_path):
    """--record x.avi / x.txt ran the show, exited 0 and saved nothing; an existing timeline of
    another recording (b.mp4's, for --record b.mov) was silently replaced."""
    (tmp_path / "b.timeline.json").write_text('{"video": "b.mp4"}')
    (tmp_path / "c.source.mp4").write_bytes(b"kept")
    cases = [(["--record", tmp_path / "x.avi"], "a recording is a .mp4, .m4v, .mov, .mkv file"),
             (["--record", tmp_path / "x.txt"], "a recording is a .mp4"),
             (["--record", tmp_path / "noext"], "a recording is a .mp4"),
             (["--record", tmp_path / "b.mov"], f"{tmp_path / 'b.timeline.json'} exists: choose another recording file"),
             (["--record", tmp_path / "c.mp4", "--record-source"], f"{tmp_path / 'c.source.mp4'} exists"),
             (["--record", tmp_path / f"{'d' * 245}.mp4"], ".timeline.json file would have a name over 255 bytes")]
    for args, needle in cases:
        r = stylize("live", "--source", "synthetic", "--headless", *args, "--model-dir", tmp_path / "no_models", "--no-download")
        assert r.returncode == 2, (args, r.stderr)
        one_error_line(r.stderr, needle)
    assert (tmp_path / "b.timeline.json").read_text() == '{"video": "b.mp4"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.timeline.json", "c.source.mp4"]


def test_bench_json_is_checked_before_measuring(capsys, monkeypatch, tmp_path):
    """bench --json replaced a user's file without --overwrite, and a folder there failed only after
    the whole benchmark had run."""
    import realtime.bench

    monkeypatch.setattr(realtime.bench, "run_bench", lambda cfg, job: pytest.fail("measured before the checks"))
    notes = tmp_path / "notes.json"
    notes.write_text("mine")
    for target, says in ((notes, "exists (use --overwrite"), (tmp_path, "is a folder")):
        code, err = run_main(["bench", "--sizes", "64x64", "--backends", "openvino", "--json", target], capsys)
        assert code == 2
        one_error_line(err, says)
    assert notes.read_text() == "mine"


def test_closed_stdout_is_not_a_traceback():
    r = subprocess.run(f"{sys.executable} -m realtime models list | head -1", shell=True, cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.stdout.count("\n") == 1 and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


def test_publishing_never_clobbers_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "out.png"
    first, second = temp_path_for(target), temp_path_for(target)
    first.write_bytes(b"winner")
    second.write_bytes(b"loser")
    publish(first, target)
    with pytest.raises(OutputError, match="exists"):
        publish(second, target)
    assert target.read_bytes() == b"winner" and not second.exists() and not first.exists()
    third = temp_path_for(target)
    third.write_bytes(b"asked for")
    publish(third, target, overwrite=True)
    assert target.read_bytes() == b"asked for"


def test_stale_part_files_of_killed_runs_are_removed(tmp_path):
    target = tmp_path / "out.mp4"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.{dead.pid}.abc123.part.mp4"
    stale.write_bytes(b"left by SIGKILL")
    mine = temp_path_for(target)  # our own (live) temp file survives
    other = tmp_path / ".other.1.abc.part.mp4"
    other.write_bytes(b"another output")
    assert remove_stale_parts(target) == [] and not stale.exists()
    assert mine.exists() and other.exists()


def test_sigterm_during_video_cleans_up_and_says_so(models_dir, tmp_path):
    src = tmp_path / "long.mp4"
    write_clip(src, frames=900, width=96, height=64, fps=30, audio=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, err = signal_when_file_appears(["video", src, "-o", out_dir / "out.mp4", "--style", "mosaic", "--quiet"],
                                         out_dir, ".out.*", signal.SIGTERM)
    assert code == 143 and "terminated" in err and "Traceback" not in err, err
    assert list(out_dir.iterdir()) == []


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KB file system (tmpfs), optionally remounted read-only: real ENOSPC and EROFS, which
    permission bits cannot give a root test.  Skips where mounting is not allowed."""
    mounts = []

    def make(name: str, readonly: bool = False) -> Path:
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounts.append(d)
        if readonly:
            subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
        return d

    yield make
    for d in mounts:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_read_only_and_full_disks_fail_in_one_line_and_leave_nothing(tiny_fs, tmp_path):
    ro = tiny_fs("ro", readonly=True)
    full = tiny_fs("full")
    src = write_image(tmp_path / "a.png", np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    r = stylize("image", src, "--style", "mosaic", "-o", ro / "o.png", "--model-dir", tmp_path / "none", "--no-download")
    assert r.returncode == 2
    one_error_line(r.stderr, "no permission to write")
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=40, width=320, height=240, fps=30, audio=False)
    from fakes import fake_engine

    from realtime.pipeline.video import VideoStylizer, VideoOptions
    from realtime.errors import UserError

    engine = fake_engine(tmp_path)
    with pytest.raises(UserError, match="No space left|space"):
        VideoStylizer(engine, [engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])], VideoOptions(size=64, preset="ultrafast", crf=0)).run(clip, full / "o.mp4")
    assert list(full.iterdir()) == []  # no output, no temp file
    big = np.random.default_rng(1).integers(0, 255, (400, 400, 3), np.uint8)
    with pytest.raises(UserError, match="space"):
        write_image(full / "big.png", big)
    assert list(full.iterdir()) == []


def test_a_lost_camera_without_reconnect_ends_the_show_with_an_error(models_dir, capsys, monkeypatch, tmp_path):
    """--no-reconnect: a camera or stream that stops ends the show, as asked, but with one line and a
    non-zero status (it ended silently with 0: a service manager thought all was well); a file's
    end is no error."""
    import threading

    import realtime.live.run
    from fakes import FakeCamera

    from realtime.io.sources import FileSource
    from realtime.io.synthetic import write_clip

    class Unplugged(FakeCamera):
        def read(self):
            self.n = getattr(self, "n", 0) + 1
            return super().read() if self.n <= 12 else None

    def opened(cfg):
        cam = Unplugged(plug, fps=200)
        cam.open()
        return cam

    plug = threading.Event()
    plug.set()
    monkeypatch.setattr(realtime.live.run, "open_live_source", opened)
    code, err = run_main(["live", "--source", "0", "--headless", "--no-reconnect", "--size", "32", "--fresh",
                          "--style", "mosaic"], capsys)
    assert code == 2
    one_error_line(err, "Unplugged stopped delivering frames; the show ends there (--no-reconnect")
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=6, width=64, height=48, fps=30, audio=False)
    monkeypatch.setattr(realtime.live.run, "open_live_source", lambda cfg: FileSource(clip, pace=False))
    code, err = run_main(["live", "--source", clip, "--headless", "--size", "32", "--fresh", "--style", "mosaic"], capsys)
    assert code == 0 and "error" not in err, err


def test_a_bad_style_is_one_line_before_anything_opens(capsys, monkeypatch, tmp_path):
    """image, video (and --cluster) and live: a style folder with no images, an empty, corrupt, tiny or directory
    image is refused in one line, before a camera, a window, a port or the network opens."""
    import realtime.live.run
    import realtime.model.engine

    def must_not_open(*a, **k):
        raise AssertionError("opened before the styles were checked")

    monkeypatch.setattr(realtime.live.run, "open_live_source", must_not_open)
    monkeypatch.setattr(realtime.live.run, "_preflight", must_not_open)
    monkeypatch.setattr(realtime.model.engine, "open_engine", must_not_open)
    cluster = importlib.util.find_spec("ray") is not None
    if cluster:
        import realtime.cluster.pool

        monkeypatch.setattr(realtime.cluster.pool.WorkerPool, "connect", must_not_open)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 64)
    write_image(tmp_path / "tiny.png", np.full((8, 8, 3), 90, np.uint8))
    good = tmp_path / "good"
    (good / "folder.png").mkdir(parents=True)  # a folder named like an image is no style: skipped
    write_image(good / "a.png", np.full((32, 32, 3), 90, np.uint8))
    bad_in_set = tmp_path / "set"
    bad_in_set.mkdir()
    write_image(bad_in_set / "a.png", np.full((32, 32, 3), 90, np.uint8))
    (bad_in_set / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)
    src = write_image(tmp_path / "c.png", np.full((32, 32, 3), 90, np.uint8))
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=2, width=64, height=48, fps=10, audio=False)
    styles = {"empty": "has no images", "zero.png": "empty", "corrupt.jpg": "not a readable image",
              "tiny.png": "at least 16x16", "set": "b.png"}
    for name, needle in styles.items():
        style = tmp_path / name
        runs = [["live", "--source", "synthetic", "--headless", "--style", style]]
        if name != "set":  # image and video take a folder's first image (a.png, which is good)
            runs += [["image", src, "--style", style, "-o", tmp_path / "o.png"],
                     ["video", clip, "--style", style, "-o", tmp_path / "o.mp4"]]
            if cluster:
                runs.append(["video", clip, "--style", style, "-o", tmp_path / "o.mp4", "--cluster"])
        for argv in runs:
            code, err = run_main(argv, capsys)
            assert code == 2, (argv, err)
            assert str(tmp_path / name) in one_error_line(err, needle), (argv, err)
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.mp4").exists()
    # good styles get past the check, to the preflight
    with pytest.raises(AssertionError, match="opened before"):
        run_main(["live", "--source", "synthetic", "--headless", "--style", bad_in_set / "a.png", "--style", good], capsys)
