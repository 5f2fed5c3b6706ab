"""The ``stylize`` subcommands: the argument table, flags -> config overrides + a typed job, and
the call into the job.  Errors are raised, never printed: :mod:`realtime.cli` turns them into one
line and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .errors import UserError
from .logs import log_to_file

log = logging.getLogger("realtime")


# -- shared options ------------------------------------------------------------------------------

def _engine_options(p: argparse.ArgumentParser) -> None:
    from .backends_table import DEVICE_HELP, backend_help, precision_help

    g = p.add_argument_group("engine")
    g.add_argument("--config", help="YAML config file (only the keys it changes)")
    g.add_argument("--backend", help=backend_help())
    g.add_argument(
        "--model",
        choices=("lite", "full"),
        help="lite: the small TF Lite networks (default, fast on CPUs); full: the TF Hub model "
        "(Inception-v3 style network, 12x the work per frame; same as --backend hub)",
    )
    g.add_argument("--device", help=DEVICE_HELP)
    g.add_argument("--threads", type=int, help="CPU threads for inference (0 = all cores)")
    g.add_argument("--precision", help=precision_help())
    g.add_argument("--xla", choices=("auto", "always", "never"), help="compile the transfer graph (XLA with tf and hub, torch.compile with torch on CUDA; "
                   "default auto: for live and video)")
    g.add_argument("--model-dir", help="folder with the .tflite model files (env REALTIME_MODEL_DIR)")
    g.add_argument("--hub-handle", help="TF Hub handle or SavedModel folder for --backend hub")
    g.add_argument("--no-download", action="store_true", help="never download model files")


def _backend(args: argparse.Namespace) -> Optional[str]:
    """--backend, or the backend --model names (lite: the TF Lite networks on any engine; full: hub)."""
    backend, model = getattr(args, "backend", None), getattr(args, "model", None)
    if model is None:
        return backend
    from .backends_table import backends_for_model

    wanted = backends_for_model(model)
    if backend is not None and backend not in wanted:
        raise UserError(f"--model {model} and --backend {backend} disagree (--model {model} means --backend {' or '.join(wanted)})")
    return backend or wanted[0]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {
        "engine.backend": _backend(args),
        "engine.device": getattr(args, "device", None),
        "engine.threads": getattr(args, "threads", None),
        "engine.precision": getattr(args, "precision", None),
        "engine.xla": getattr(args, "xla", None),
        "models.model_dir": getattr(args, "model_dir", None),
        "models.hub_handle": getattr(args, "hub_handle", None),
    }
    if getattr(args, "no_download", False):
        o["models.auto_download"] = False
    return o


def load_cfg(args: argparse.Namespace, extra: Optional[dict[str, Any]] = None):
    from .config import load_config

    overrides = _overrides(args)
    overrides.update(extra or {})
    cfg = load_config(getattr(args, "config", None), overrides)
    log_to_file(cfg.log)
    return cfg


# -- subcommands ---------------------------------------------------------------------------------

def cmd_image(args: argparse.Namespace) -> int:
    from .jobs.image import ImageJob, run_image

    if bool(args.output) == bool(args.out_dir):
        raise UserError("give exactly one of -o OUT or --out-dir DIR")
    if args.output and len(args.content) > 1:
        raise UserError("-o takes one content image; use --out-dir DIR for several")
    _check_output_name(args.output)
    cfg = load_cfg(args, {"image.size": args.size, "styles.strength": args.strength})
    job = ImageJob(tuple(args.content), tuple(args.style), tuple(args.blend), args.output, args.out_dir, args.overwrite)
    return run_image(cfg, job)


def cmd_models(args: argparse.Namespace) -> int:
    from .model.backends.factory import model_store
    from .model.files import CATALOG, REQUIRED

    cfg = load_cfg(args)
    store = model_store(cfg)
    for k in args.names:
        store.entry(k)  # unknown name -> one-line error before any work (list ignored them)
    if args.action == "list":
        print(f"{'model':18} {'bytes':>10}  {'status':8} file / url")
        for key, m in CATALOG.items():
            if args.names and key not in args.names:
                continue
            status, path = store.status(key)
            short = status.split(":")[0]
            print(f"{key:18} {m.size:>10,}  {short:8} {path or m.url(cfg.models.base_url)}")
        print(f"TF Hub model (hub backend): {cfg.models.hub_handle}")
        return 0
    keys = args.names or list(REQUIRED)
    bad = 0
    for key in keys:
        if args.action == "fetch":
            try:
                path = store.fetch(key) if store.status(key)[0] != "ok" else store.status(key)[1]
                print(f"ok       {key}: {path}")
            except UserError as exc:
                print(f"failed   {key}: {exc}", file=sys.stderr)
                bad += 1
                continue
        else:
            status, path = store.status(key)
            print(f"{status.split(':')[0]:8} {key}: {path or 'not found in ' + str(store.model_dir or store.cache_dir)}")
            if status != "ok":
                if status != "missing":
                    print(f"         {status}", file=sys.stderr)
                bad += 1
                continue
        for problem in store.problems(key):  # a bad copy that a good one stands in for: said, not hidden
            print(f"         not used: {problem}", file=sys.stderr)
    return 2 if bad else 0


def cmd_styles(args: argparse.Namespace) -> int:
    from .model.style_catalog import DEFAULT_CATALOG, fetch_styles, load_catalog
    from .model.styles import list_styles, style_dirs

    cfg = load_cfg(args)
    catalog = load_catalog(Path(args.catalog) if args.catalog else DEFAULT_CATALOG)
    folder = Path(args.dest or cfg.styles.dir)
    if args.action == "list":
        have = set()
        for d in ([folder] if args.dest else style_dirs(folder)):
            local = list_styles(d)
            print(f"styles in {d}/ ({len(local)}):")
            for s in local:
                print(f"  {s.name:32} {s.path}")
            have |= {s.name for s in local}
        uploaded = list_styles(cfg.upload_dir)
        if uploaded and not args.dest:
            print(f"uploaded from the control page, in {cfg.upload_dir}/ ({len(uploaded)}; --style NAME uses one):")
            for s in uploaded:
                print(f"  {s.name:32} {s.path}")
        print("catalogue (stylize styles fetch NAME):")
        for e in catalog:
            mark = "present" if e.name in have else "       "
            print(f"  {e.name:32} {mark}  {e.artist}, {e.title} ({e.year})")
        return 0
    written, errors = fetch_styles(folder, args.names, catalog, overwrite=args.overwrite)
    for p in written:
        print(f"ok       {p}")
    for e in errors:
        print(f"failed   {e}", file=sys.stderr)
    return 2 if errors else 0


def cmd_video(args: argparse.Namespace) -> int:
    from .jobs.video import VideoJob, run_video

    if bool(args.output) == bool(args.out_dir):
        raise UserError("give exactly one of -o OUTPUT or --out-dir DIR")
    if args.timeline is not None:
        clash = [flag for flag, v in (("--style", args.style), ("--switch-every", args.switch_every), ("--strength", args.strength),
                                      ("--stability", _stability(args)), ("--start", args.start), ("--end", args.end))
                 if v is not None]
        if clash:
            raise UserError(f"--timeline sets styles, strength and stability over the whole recording: drop {', '.join(clash)}")
    elif not args.style:
        raise UserError("give --style STYLE (or --timeline NAME.timeline.json to replay a recording)")
    if not args.inputs and args.timeline is None:
        raise UserError("give the video file(s) or folder(s) to stylize")
    args.style = args.style or []
    if args.switch_every is not None and not (math.isfinite(args.switch_every) and 0 < args.switch_every <= 1e7):
        raise UserError(f"--switch-every must be a number of seconds > 0, got {args.switch_every}")
    if len(args.style) > 1 and args.switch_every is None:
        raise UserError("several --style values need --switch-every SECONDS (how long each style is shown)")
    for name, v in (("--start", args.start), ("--end", args.end)):
        if v is not None:
            _check_seconds(name, v)
    if args.end is not None and args.end <= (args.start or 0.0):
        raise UserError(f"--end ({args.end:g}) must be after --start ({args.start or 0.0:g})")
    _check_output_name(args.output)
    if args.cluster and (Path(args.cluster).exists() or not _CLUSTER_ADDRESS.match(args.cluster)):
        raise UserError(f"--cluster {args.cluster!r}: the address is auto, HOST:PORT or ray://HOST:PORT "
                        "(put the input files before --cluster)")
    cfg = load_cfg(args, {
        "engine.batch_size": args.batch, "video.crf": args.crf, "video.stability": _stability(args),
        "video.preset": args.preset, "video.encoder": args.encoder, "video.size": args.size, "styles.strength": args.strength,
        "cluster.enabled": True if args.cluster is not None else None, "cluster.address": args.cluster or None,
    })
    job = VideoJob(
        inputs=tuple(args.inputs), styles=tuple(args.style), output=args.output, out_dir=args.out_dir,
        switch_every=args.switch_every or 0.0, audio=not args.no_audio, start=args.start, end=args.end,
        overwrite=args.overwrite, progress=not args.quiet, timeline=args.timeline,
    )
    if cfg.cluster.enabled:  # Ray is imported only here
        from .cluster.runner import run_cluster

        return run_cluster(cfg, job)
    return run_video(cfg, job)


_CLUSTER_ADDRESS = re.compile(r"^(auto|ray://[\w.\-\[\]:]+|[\w.\-]+:\d+)$")


def live_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``stylize live``'s flags as config keys (None: not given, the config's value stays)."""
    extra: dict[str, Any] = {
        "live.source": args.source, "live.style_source": args.style_source, "live.size": args.size, "live.width": args.width, "live.height": args.height,
        # --size pins the size: the governor is off unless a target is asked for too
        "live.target_fps": args.target_fps if args.target_fps is not None else (0.0 if args.size is not None else None),
        "live.fps": args.fps, "live.stability": _stability(args), "live.max_frames": args.max_frames,
        "styles.strength": args.strength, "ndi.name": args.ndi, "log.file": args.log_file or None,
    }
    switches = {"headless": "live.headless", "fullscreen": "live.fullscreen", "loop": "live.loop", "keep_pace": "live.keep_pace",
                "record_source": "live.record_source", "kiosk": "kiosk.enabled", "virtual_camera": "virtual_camera.enabled"}
    extra.update({key: True for flag, key in switches.items() if getattr(args, flag)})
    if args.web is not None:
        from .web.server import parse_web

        host, port = parse_web(args.web)
        extra.update({"web.enabled": True, "web.host": host, "web.port": port})
    if args.osc is not None:
        from .control.osc import parse_osc

        host, port = parse_osc(args.osc)
        extra.update({"osc.enabled": True, "osc.host": host, "osc.port": port})
    if getattr(args, "midi", None) is not None:
        extra.update({"midi.enabled": True, "midi.port": args.midi or None})
    if args.no_reconnect:
        extra["live.reconnect"] = False
    if args.record is not None:
        extra["live.record"] = True
        extra["live.record_path"] = args.record or None
    return extra


def cmd_live(args: argparse.Namespace) -> int:
    if args.osc_help:  # the address table, generated from the actions like the key help
        from .control.osc import osc_help_lines

        print("OSC addresses (stylize live --osc [HOST:]PORT):\n  " + "\n  ".join(osc_help_lines()))
        return 0
    from .live.run import LiveJob, run_live

    extra = live_overrides(args)
    cfg = load_cfg(args, extra)
    return run_live(cfg, LiveJob(tuple(args.style or ()), fresh=args.fresh))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .jobs.evaluate import EvaluateJob, run_evaluate

    if args.frames < 2:
        raise UserError(f"--frames must be at least 2, got {args.frames}")
    return run_evaluate(EvaluateJob(args.source, args.stylized, args.raw, args.frames, args.json, args.overwrite))


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import parse_bench_job, run_bench

    backends = args.backends
    if (args.backend or "auto") != "auto" or (args.precision or "auto") != "auto":
        # bench measures variants (--backends); --backend/--precision pick them (they were ignored)
        from .bench import variants_for

        if backends != "installed":
            raise UserError("give --backends (e.g. openvino-bf16,tflite) or --backend/--precision, not both")
        backends = ",".join(variants_for(args.backend, args.precision))
    job = parse_bench_job(args.sizes, args.batches, backends, args.seconds, args.json, args.target_fps, args.source)
    if job.json:  # before minutes of measuring, as every output is
        from .io.paths import check_output_file

        check_output_file(Path(job.json), args.overwrite, "--json")
    return run_bench(load_cfg(args), job)


def _stability(args: argparse.Namespace) -> Optional[float]:
    """``--stability``; the old ``--smooth`` still works for a while, as an alias with a warning."""
    if args.smooth is not None:
        if args.stability is not None:
            raise UserError("give --stability only (--smooth is its old name)")
        log.warning("--smooth is deprecated: it is now --stability (flow-guided, 0..1), used with the same value")
        return args.smooth
    return args.stability


def _check_output_name(output: Optional[str]) -> None:
    """``-o`` names a file: ``out.png/`` (a folder's spelling) was written as ``out.png``, and an
    existing folder got "must be an H.264 video file"."""
    if output and (output.endswith(("/", os.sep)) or Path(output).is_dir()):
        raise UserError(f"-o {output} is a folder; give a file name, or --out-dir {output.rstrip('/' + os.sep) or output}")


def _check_seconds(flag: str, value: float) -> None:
    if not math.isfinite(value) or value < 0 or value > 1e7:
        raise UserError(f"{flag} must be a number of seconds >= 0, got {value}")


# -- parser --------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``stylize video: error: ... (see --help)``, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stylize",
        description="Stylize images, video files and live camera video with any painting as the style.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug, with the native libraries' own messages)")
    p.add_argument("--log-quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _image_parser(sub)
    _video_parser(sub)
    _live_parser(sub)
    _tool_parsers(sub)
    return p


def _image_parser(sub: argparse._SubParsersAction) -> None:
    pi = sub.add_parser("image", help="stylize still images")
    pi.add_argument("content", nargs="+", help="content image file(s)")
    pi.add_argument("--style", action="append", required=True,
                    help="style image, folder (first image) or name in styles/; repeat for one result per style "
                         "(-o two.png -> two-waves.png, two-dots.png)")
    pi.add_argument("-o", "--output", help="output image file (.png, .jpg, ...)")
    pi.add_argument("--out-dir", help="output folder (files named CONTENT-STYLE.png; a blend: CONTENT-STYLE+BLEND.png)")
    pi.add_argument("--size", type=int, default=None, help="inference short side in pixels (default: the content's own, capped)")
    pi.add_argument("--strength", type=float, default=None, help="0 = content's look, 1 = style (default), >1 extrapolates")
    pi.add_argument("--blend", nargs="+", default=[], metavar="STYLE:WEIGHT",
                    help="blend in more styles, e.g. ink:0.5 (--style has weight 1; a weight is in 0..10, above 0)")
    pi.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _engine_options(pi)
    pi.set_defaults(func=cmd_image)


def _video_parser(sub: argparse._SubParsersAction) -> None:
    pv = sub.add_parser("video", help="stylize video files (sound kept)")
    pv.add_argument("inputs", nargs="*", help="video file(s) or folder(s) (with --timeline: default its source video)")
    pv.add_argument("-o", "--output", help="output file (one input)")
    pv.add_argument("--out-dir", help="output folder (several inputs)")
    pv.add_argument("--style", action="append", default=None, help="style (repeat with --switch-every)")
    pv.add_argument("--timeline", default=None, metavar="NAME.timeline.json",
                    help="replay a live recording's timeline on its raw video: styles, strength, stability and "
                         "crossfades at their media times (instead of --style)")
    pv.add_argument("--switch-every", type=float, default=None, help="seconds per style when several are given (> 0)")
    pv.add_argument("--size", type=int, default=None, help="inference short side (default: source's own, capped)")
    pv.add_argument("--strength", type=float, default=None, help="style strength (default from config)")
    pv.add_argument("--crf", type=int, default=None, help="H.264 quality (lower = better; default 16)")
    pv.add_argument("--stability", type=float, default=None, help="steady textures in motion (flow-guided): 0 (off) .. 1 (default 0.55)")
    pv.add_argument("--smooth", type=float, default=None, help=argparse.SUPPRESS)  # deprecated: --stability
    pv.add_argument("--preset", default=None, help="x264 speed/size trade-off: ultrafast .. veryslow (default superfast)")
    pv.add_argument("--encoder", choices=("x264", "nvenc"), default=None,
                    help="x264 (default) or nvenc: NVIDIA's hardware encoder where the GPU has one (else x264, said once)")
    pv.add_argument("--batch", type=int, default=None, help="frames per inference call")
    pv.add_argument("--no-audio", action="store_true", help="drop the sound")
    pv.add_argument("--start", type=float, default=None, help="start time in seconds")
    pv.add_argument("--end", type=float, default=None, help="end time in seconds")
    pv.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    pv.add_argument("--quiet", action="store_true", help="no progress bar")
    pv.add_argument("--cluster", nargs="?", const="", default=None, metavar="ADDRESS",
                    help="spread the work over a Ray cluster: no ADDRESS = a local Ray on this machine, "
                         "'auto' or ray://HOST:10001 = a running cluster (resumable: rerun to finish)")
    _engine_options(pv)
    pv.set_defaults(func=cmd_video)


def _live_parser(sub: argparse._SubParsersAction) -> None:
    """``stylize live``: the show's own flags; every one has its config key (``live:`` and the
    show-surface sections), so an unattended setup can live in one file."""
    pl = sub.add_parser("live", help="stylize a camera (or file, stream, synthetic) live in a window")
    pl.add_argument("--source", help="camera index, /dev/videoN, file, rtsp/http URL or 'synthetic'")
    pl.add_argument("--style", action="append", help="style file, folder or name (repeatable; default: styles/)")
    pl.add_argument("--style-source", metavar="SRC",
                    help="a second camera, file or stream (as --source) that take_style (key g) takes its picture from")
    pl.add_argument("--size", type=int, default=None,
                    help="inference short side, pinned (default: the governor picks it, 384 at most)")
    pl.add_argument("--target-fps", type=float, default=None,
                    help="frame rate the governor holds by shrinking the inference size (default: the source's, at most 30; 0 = off)")
    pl.add_argument("--strength", type=float, default=None, help="initial style strength")
    pl.add_argument("--stability", type=float, default=None, help="steady textures in motion (flow-guided): 0 (off) .. 1 (default 0.55; key t)")
    pl.add_argument("--smooth", type=float, default=None, help=argparse.SUPPRESS)  # deprecated: --stability
    pl.add_argument("--record", nargs="?", const="", default=None, metavar="FILE", help="record from the start (optionally to FILE)")
    pl.add_argument("--record-source", action="store_true",
                    help="every recording (--record, key r, the page) also keeps the camera's own frames as "
                         "NAME.source.mp4, on its timeline's clock: the input of stylize video --timeline")
    pl.add_argument("--headless", action="store_true", help="no window (record or count frames only)")
    pl.add_argument("--max-frames", type=int, default=None, help="stop after N stylized frames")
    pl.add_argument("--fullscreen", action="store_true", help="start full screen")
    pl.add_argument("--kiosk", action="store_true", help="installation screen: whole screen, no pointer, no overlay (config kiosk:)")
    pl.add_argument("--log-file", help="also log to this size-rotated file (config log:)")
    pl.add_argument("--web", metavar="[HOST:]PORT", help="control page, JSON API and preview stream (e.g. 8080, or 0.0.0.0:8080 for phones)")
    pl.add_argument("--osc", metavar="[HOST:]PORT", help="Open Sound Control over UDP: every action at /realtime/<action> (e.g. 9000)")
    pl.add_argument("--osc-help", action="store_true", help="print the OSC address table and exit")
    pl.add_argument("--midi", nargs="?", const="", default=None, metavar="PORT",
                    help="steer the show from a MIDI controller (PORT: an input's name; none = the first; config midi:)")
    pl.add_argument("--virtual-camera", action="store_true", help="send the picture to a virtual webcam (OBS, Zoom, Meet)")
    pl.add_argument("--ndi", metavar="NAME", help="publish the picture as the NDI source NAME (OBS, vMix, --source ndi:NAME; config ndi:)")
    pl.add_argument("--loop", action="store_true", help="repeat a file source")
    pl.add_argument("--keep-pace", action="store_true", help="file source: keep real time, dropping frames like a camera")
    pl.add_argument("--width", type=int, default=None, help="requested capture width")
    pl.add_argument("--height", type=int, default=None, help="requested capture height")
    pl.add_argument("--fps", type=float, default=None, help="requested capture fps (file/synthetic pacing)")
    pl.add_argument("--fresh", action="store_true", help="start from the config, not from the show state saved by show.remember")
    pl.add_argument("--no-reconnect", action="store_true", help="end the show when the camera or stream is lost (default: reconnect)")
    _engine_options(pl)
    pl.set_defaults(func=cmd_live)


def _tool_parsers(sub: argparse._SubParsersAction) -> None:
    """The commands around the show: model files, styles, evaluation, benchmarks."""
    pm = sub.add_parser("models", help="list, fetch or verify the model files")
    pm.add_argument("action", choices=("list", "fetch", "verify"))
    pm.add_argument("names", nargs="*", help="catalogue keys (default: the required ones)")
    pm.add_argument("--config", help="YAML config file")
    pm.add_argument("--model-dir", help="folder with the .tflite model files")
    pm.set_defaults(func=cmd_models)

    ps = sub.add_parser("styles", help="list the styles, or fetch famous paintings from the catalogue")
    ps.add_argument("action", choices=("list", "fetch"))
    ps.add_argument("names", nargs="*", help="catalogue names to fetch (default: all)")
    ps.add_argument("--dest", help="folder (default: the styles folder of the config)")
    ps.add_argument("--catalog", help="catalogue YAML (default: styles/catalog.yaml)")
    ps.add_argument("--overwrite", action="store_true")
    ps.add_argument("--config", help="YAML config file")
    ps.set_defaults(func=cmd_styles)

    pe = sub.add_parser("evaluate", help="how steady a stylized video is (warping error, frame difference, PSNR)")
    pe.add_argument("source", help="the original video")
    pe.add_argument("stylized", help="the stylized video to judge")
    pe.add_argument("--raw", help="the same video stylized with --stability 0: PSNR against it")
    pe.add_argument("--frames", type=int, default=300, help="frames from the start to compare (default 300)")
    pe.add_argument("--json", help="also write the figures to this JSON file")
    pe.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    pe.set_defaults(func=cmd_evaluate)

    from .backends_table import variant_names as bench_variants

    pb = sub.add_parser("bench", help="measure model throughput on this machine")
    pb.add_argument("--sizes", default="384x384,640x480", help="comma-separated WxH list")
    pb.add_argument("--batches", default="1", help="comma-separated batch sizes (1: as live runs the network; more: as a video file does, one batch in flight)")
    pb.add_argument("--backends", default="installed",
                    help="installed (every installed backend; bf16 too on CPUs that run it natively), or "
                         "comma-separated: " + ", ".join(bench_variants()))
    pb.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    pb.add_argument("--json", help="also write the results to this JSON file")
    pb.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    pb.add_argument("--target-fps", type=float, default=0.0,
                    help="also time the live governor's ladder with the show's engine and say which size holds this rate")
    pb.add_argument("--source", default="1280x720", help="source size for --target-fps (WxH)")
    _engine_options(pb)
    pb.set_defaults(func=cmd_bench)
