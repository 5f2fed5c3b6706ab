"""``stylize live`` from a config: checks first, then the source, the network, the show.

Why apart from :mod:`.app`: the main loop (:class:`~.app.LiveApp`) is what tests and benchmarks
drive with fakes; this is the wiring of the real thing (the engine, the style set, the control
page, the virtual camera, the show's surfaces) and the order that makes every likely failure a
one-line error before the ten seconds of loading the network, which then run on a worker thread
while the window already shows a card (:mod:`.startup`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from ..config import Config
from ..core.controller import Controller, LiveState
from ..core.styleset import StyleEntry, StyleSet
from ..core.workers import call_interruptibly
from ..io.images import read_image
from ..io.paths import NAME_BYTES, OutputError, check_output_dir, source_path, timeline_path
from ..io.recovery import clean_stale_parts
from ..io.sinks import Output
from ..io.sinks.recorder import RECORD_EXTS, name_taken
from ..io.sinks.window import WindowOutput
from ..errors import ConfigError, MediaError
from ..io.sources import BackgroundSource, FileSource, FrameSource, SupervisedSource, open_source
from ..model.styles import Style, check_style_files, find_style_images
from ..pipeline.stage import StylizeStage, check_mixable
from ..core.motion import MotionMeter
from .app import LiveApp
from .governor import Governor, target_for
from .keymap import help_lines
from .memory import ShowMemory
from .midi import MidiControl, open_midi
from .midi_map import mapping_for
from .pipeline import LivePipeline
from .show import memory_mb, show_surfaces
from .startup import StartupCard, startup_card
from .take import StyleTaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveJob:
    """What ``stylize live`` was asked for beyond the config: the styles (files, folders, names)."""

    styles: tuple[str, ...] = ()
    fresh: bool = False  # --fresh: the saved show state (show.remember) is not put back



def print_help(kiosk: bool = False, exit_keys: str = "") -> None:
    print("keys:\n  " + "\n  ".join(help_lines(kiosk, exit_keys)), flush=True)


def open_live_source(cfg: Config) -> FrameSource:
    live = cfg.live
    return open_source(
        live.source,
        width=live.width,
        height=live.height,
        fps=live.fps,
        loop=live.loop,
        keep_pace=live.keep_pace,
        reconnect=live.reconnect,
        stall_s=live.stall_s,
        reconnect_max_s=live.reconnect_max_s,
        ndi_find_s=cfg.ndi.find_s,
    )


def open_style_source(cfg: Config) -> Optional[BackgroundSource]:
    """``--style-source``: the second source take_style takes from, made now (a malformed value is
    one line before anything opens) but opened on its own thread once started: one that is missing
    or lost is a log line and "not connected", never the end of the show, so it is always supervised
    and a file loops."""
    live = cfg.live
    spec = (live.style_source or "").strip()
    if not spec:
        return None
    if spec == str(live.source).strip() and (spec.isdigit() or spec.startswith("/dev/")):  # a camera opens once
        raise ConfigError(f"--style-source {spec} is the show's own camera (--source): leave it out to take styles from the show's picture")
    source = open_source(spec, width=live.width, height=live.height, loop=True, keep_pace=True, reconnect=True,
                         stall_s=live.stall_s, reconnect_max_s=live.reconnect_max_s)
    if isinstance(source, FileSource) and not source.path.is_file():  # said now, not as "not connected yet"
        log.warning("--style-source %s: no such file (yet); take_style waits for it", spec)
    if isinstance(source, SupervisedSource):
        source.name = f"style source {spec}"
    return BackgroundSource(source, label=spec, retry_max_s=live.reconnect_max_s)


def stage_view_size(source: FrameSource) -> tuple[int, int]:
    """The size of the shown picture (the source's; side by side is scaled back into it)."""
    w, h = source.size
    return (w or 640, h or 480)


def open_virtual_camera(cfg: Config, width: int, height: int, fps: float = 0.0) -> Optional[Output]:
    """``--virtual-camera``: opened now, so a missing device is one line before the show starts;
    the show goes on without it unless ``virtual_camera.required``."""
    vc = cfg.virtual_camera
    if not vc.enabled:
        return None
    from ..io.sinks.virtualcam import VirtualCamera, VirtualCameraError

    camera = VirtualCamera(vc.fps or fps or 30.0, vc.device)
    try:
        camera.open(width, height)
    except VirtualCameraError as exc:
        if vc.required:
            raise
        log.warning("%s (the show goes on without it)", exc)
        return None
    return camera


def open_ndi(cfg: Config, width: int, height: int, fps: float = 0.0) -> Optional[Output]:
    """``--ndi NAME``: the sender is created now, so a missing runtime is one line (and a non-zero
    exit) before the network loads: whoever asked for NDI is relying on it."""
    if not cfg.ndi.name:
        return None
    from ..io.sinks.ndi import NdiOutput

    out = NdiOutput(cfg.ndi.name, cfg.ndi.fps or fps or 30.0)
    out.open(width, height)
    return out


def open_idle_clip(cfg: Config) -> Optional[FrameSource]:
    """The attract-mode clip, opened now so a bad file is a one-line error before anything starts."""
    if not cfg.show.idle_clip:
        return None
    if cfg.show.idle_s <= 0:
        log.warning("show.idle_clip is set but show.idle_s is 0: attract mode is off, the clip is not used")
        return None
    clip = FileSource(cfg.show.idle_clip, loop=True, pace=False)
    clip.open()
    return clip


def open_governor(cfg: Config, source: FrameSource, controller: Controller) -> Optional[Governor]:
    """The governor for this source (None: the size is pinned, ``live.target_fps: 0`` or ``--size``);
    its ladder starts at ``live.size``, capped by the source's short side and ``engine.max_size``."""
    target = target_for(cfg.live.target_fps, source.fps)
    if target <= 0:
        return None
    w, h = source.size
    top = min(cfg.live.size, min(w, h) if w and h else cfg.live.size, cfg.engine.max_size or cfg.live.size)
    governor = Governor(top, target)
    controller.add_status(governor.status)
    return governor


def open_osc(cfg: Config) -> Any:
    """``--osc``: the UDP port taken now (one line if it is in use, before camera and network); it
    serves once the controller exists (:meth:`~realtime.control.osc.OscServer.start`)."""
    if not cfg.osc.enabled:
        return None
    from ..control.osc import OscServer

    return OscServer(cfg.osc.host, cfg.osc.port)


def _preflight(cfg: Config) -> tuple[Optional[np.ndarray], Any, str]:
    """What can fail in a second is checked before the camera and the network (which take ten):
    the display, the recording and snapshot folders, the NDI runtime, the closed-hours picture, the
    web port.  Returns the closed-hours picture, the web server (its port taken, not yet serving) and its token."""
    live = cfg.live
    if not live.headless:
        from ..io.sinks.window import require_display

        require_display()  # before the camera and the network: fail in a second, not after ten
    if live.headless and not live.max_frames and not live.record:
        log.info("headless with no --record and no --max-frames: runs until Ctrl-C or the source ends")
    # Where files will go is checked before anything starts (the folders are made when first used).
    if live.record:
        check_output_dir(Path(live.record_path).parent if live.record_path else Path(live.record_dir), "recording folder", create=False)
        if live.record_path and Path(live.record_path).suffix.lower() not in RECORD_EXTS:
            raise OutputError(f"cannot record to {live.record_path}: a recording is a {', '.join(RECORD_EXTS)} file")
        if live.record_path:  # its companions' names are longer than its own: "File name too long" at the end
            rec = Path(live.record_path)
            for companion in (timeline_path(rec), *([source_path(rec)] if live.record_source else [])):
                if len(os.fsencode(companion.name)) > NAME_BYTES:
                    raise OutputError(f"cannot record to {rec.name}: its {companion.name[len(rec.stem):]} file would have "
                                      f"a name over {NAME_BYTES} bytes; choose a shorter name")
    # A recording cut off by a crash (a power cut, kill -9) is recovered now, before the show, not
    # in the middle of it when the r key first writes into its folder (and before the name below
    # is judged: the timeline it left is moved along with it).
    for folder in {Path(live.record_dir), *([Path(live.record_path).parent] if live.record_path else [])}:
        if folder.is_dir():
            clean_stale_parts(folder)
    in_the_way = live.record and live.record_path and name_taken(Path(live.record_path), live.record_source)
    if in_the_way:
        raise OutputError(f"{in_the_way} exists: choose another recording file")
    check_output_dir(Path(live.snapshot_dir), "snapshot folder", create=False)
    if cfg.ndi.name:  # no NDI runtime: one line now, not after the network loaded
        from ..io.ndi import load_cyndilib

        load_cyndilib()
    closed_picture = None  # read now: a bad picture is a one-line error before anything starts
    if cfg.show.closed_image:
        closed_picture = np.ascontiguousarray(read_image(cfg.show.closed_image)[..., ::-1])
    server, token = None, ""
    if cfg.web.enabled:  # the port is taken now: one line if it is in use, before camera and network
        from ..web.server import WebServer, pick_token

        token = pick_token(cfg.web.token)
        server = WebServer(cfg.web.host, cfg.web.port)
    return closed_picture, server, token


def _serve_page(cfg: Config, server: Any, token: str, controller: Controller, code_for: Any,
                view_size: tuple[int, int], style_source: Optional[BackgroundSource] = None) -> Output:
    """The control page: its preview output (returned, for the show's outputs; a card until the
    first frame), the style library for uploads, and the server started; the URLs (and a QR code of
    the first, off loopback) printed."""
    from ..web.app import build_app
    from ..web.library import StyleLibrary
    from ..web.preview import MjpegPreview
    from ..web.server import print_access

    web = cfg.web
    preview = MjpegPreview(web.preview_width, web.preview_quality, web.preview_fps, web.max_clients)
    preview.show_card(startup_card(view_size, "the first picture is on its way", title="starting the show..."))
    controller.add_status(preview.status)
    library = StyleLibrary(controller, cfg.upload_dir, code_for, int(web.upload_mb * 1024 * 1024))
    server.start(build_app(controller, token, preview, library, style_source))
    print_access(server.urls(token), everywhere=server.everywhere)
    return preview


@dataclass
class _Loaded:
    """What the slow part of the start made (on the loader thread)."""

    engine: Any
    style_set: StyleSet
    stage: StylizeStage


def _load(cfg: Config, styles: list[Style], source: FrameSource, progress: Callable[[str], None]) -> _Loaded:
    """The slow part (8-14 s on a small machine): the network, each style's code, the warm-up at
    the inference size.  Runs on a worker thread; ``progress`` says what it is doing."""
    from ..model.engine import open_engine

    progress(f"opening the network ({cfg.engine.backend} backend)")
    engine = open_engine(cfg)
    codes = []
    for i, style in enumerate(styles):
        progress(f"style {i + 1} of {len(styles)}: {style.name}")
        codes.append(engine.bank.code_for(style))
    style_set = StyleSet(StyleEntry(s.name, s.path, c) for s, c in zip(styles, codes))
    check_mixable(engine.stylizer, cfg.styles.strength, 1)
    stage = StylizeStage(engine.stylizer, cfg.live.size, cfg.engine.max_size, stability_device=cfg.engine.stability_device)
    w, h = source.size
    if w and h:
        size = stage.size_for(w, h)
        progress(f"warming up at {size[0]}x{size[1]}")
        engine.stylizer.warmup(*size)
    return _Loaded(engine, style_set, stage)


def open_start_window(cfg: Config, source: FrameSource) -> tuple[Optional[WindowOutput], Optional[StartupCard]]:
    """The show's window, opened now with the start-up card (None, None when headless)."""
    if cfg.live.headless:
        return None, None
    kiosk = cfg.kiosk.enabled
    window = WindowOutput(cfg.live.fullscreen or kiosk, kiosk=kiosk)
    startup = StartupCard(window, stage_view_size(source), kiosk=kiosk, exit_keys=cfg.kiosk.exit_keys)
    startup.draw()
    return window, startup


def _report(app: LiveApp, stats: Any, dropped: int, asked_to_record: bool) -> None:
    """The show's closing lines: its figures and its recordings; a recording that did not all reach
    the disk (asked for with --record) is an error, so a service manager hears of it."""
    first = f", first frame {stats.first_frame_s:.2f} s after start" if stats.first_frame_s is not None else ""
    log.info(
        "%d frames shown, display %.1f fps, latency p50 %.0f ms / p95 %.0f ms, %d dropped, peak memory %.0f MB%s",
        stats.shown, stats.display_fps(), stats.latency_ms(50), stats.latency_ms(95), dropped, memory_mb(peak=True), first,
    )
    for p in app.recordings:
        print(f"{'source' if p.stem.endswith('.source') else 'recording'}: {p}")
    if asked_to_record and app.recording_errors:
        raise OutputError(f"the recording stopped early: {app.recording_errors[0]}")


def _styles_for(cfg: Config, job: LiveJob) -> list[Style]:
    """The show's styles, found and checked now: a wrong name, an unreadable, tiny or huge image is
    one line before the port, camera, window and network."""
    specs = list(job.styles) or ([cfg.styles.default] if cfg.styles.default else [cfg.styles.dir])
    styles = [s for spec in specs for s in find_style_images(spec, cfg.styles.dir, cfg.upload_dir)]  # a wrong name: one line now
    check_style_files(styles)  # an unreadable, tiny or huge image too: before the port, camera, window and network
    return styles


def _open_inputs(cfg: Config, source: FrameSource, server: Any) -> tuple[Optional[BackgroundSource], Any]:
    """The style source and the OSC server made, and the camera opened (fail fast, before loading
    the network); on a failure the web server and OSC are stopped before it is raised."""
    osc = None
    style_source = None
    try:
        style_source = open_style_source(cfg)
        osc = open_osc(cfg)
        source.open()  # fail fast, before loading the network
    except BaseException:
        if server is not None:
            server.stop()
        if osc is not None:
            osc.stop()
        raise
    return style_source, osc


def _controller_for(cfg: Config, loaded: _Loaded) -> Controller:
    """The show's controller, in the state the config starts it in."""
    live = cfg.live
    kiosk = cfg.kiosk.enabled  # fullscreen, no overlay (the o key or the controller still shows it)
    return Controller(
        loaded.style_set,
        LiveState(strength=cfg.styles.strength, stability=live.stability, overlay=live.overlay and not kiosk,
                  mirror=live.mirror, fullscreen=live.fullscreen or kiosk, crossfade_s=cfg.styles.crossfade_s),
        mixable=loaded.engine.stylizer.mixable_codes,
    )


def _pipeline_for(cfg: Config, source: FrameSource, loaded: _Loaded, controller: Controller, motion: Optional[MotionMeter],
                  governor: Optional[Governor], resting: bool, n_styles: int) -> LivePipeline:
    """The live pipeline (``resting``: the network rests while an idle clip plays), and its one start-up line."""
    live, stage = cfg.live, loaded.stage
    pipeline = LivePipeline(source, stage, controller, None, None, cfg.show.worker_restarts_per_hour,
                            motion=motion, rest_while_idle=resting, hang_s=live.hang_s, governor=governor,
                            crossfade_beats=cfg.show.crossfade_beats)
    w, h = source.size
    log.info("source: %s; %d styles; inference %s%s", source.describe(), n_styles,
             "x".join(map(str, stage.size_for(w, h))) if w and h else f"short side {live.size}",
             f" (governor: {governor.target_fps:g} fps)" if governor else " (pinned)")
    return pipeline


def _open_outputs(cfg: Config, source: FrameSource, server: Any, token: str, controller: Controller, loaded: _Loaded,
                  style_source: Optional[BackgroundSource]) -> list[Output]:
    """The show's outputs besides its window: NDI, the virtual camera, the control page's preview."""
    outputs: list[Output] = []
    try:
        for opener in (open_ndi, open_virtual_camera):  # one after the other: a failure closes those before
            out = opener(cfg, *stage_view_size(source), fps=source.fps)
            if out is not None:
                outputs.append(out)
        if server is not None:
            outputs.append(_serve_page(cfg, server, token, controller, loaded.engine.bank.code_for, stage_view_size(source),
                                       style_source))
    except BaseException:
        _close_outputs(outputs)  # the NDI sender, when the virtual camera was required and is missing
        raise
    return outputs


def _close_outputs(outputs: list[Output]) -> None:
    """Outputs opened by a start that failed before the app took them over."""
    for out in outputs:
        try:
            out.close()
        except Exception:  # noqa: BLE001 - the start's own error is the one to report
            log.debug("closing %s failed", type(out).__name__, exc_info=True)


def _taker_for(cfg: Config, controller: Controller, loaded: _Loaded,
               style_source: Optional[BackgroundSource]) -> StyleTaker:
    """take_style (issue 28): pictures coded like the page's uploads, kept beside them; the app joins its thread."""
    taker = StyleTaker(controller, cfg.upload_dir / "taken", loaded.engine.bank.code_for, cfg.styles.taken_max)
    if style_source is not None:
        log.info("take_style takes its picture from the style source %s (%s)", cfg.live.style_source,
                 "connected" if style_source.connected else "not connected yet")
    return taker


def _close_inputs(midi: Optional[MidiControl], window: Optional[WindowOutput], source: FrameSource,
                  style_source: Optional[BackgroundSource], idle_clip: Optional[FrameSource], server: Any,
                  osc: Any) -> None:
    """Whatever the start opened, closed at the end of the show or of a start that failed or was stopped."""
    if midi is not None:
        midi.close()  # its reader thread joined
    if window is not None:
        window.close()  # the start-up card's, when the start failed or was stopped
    source.close()
    if style_source is not None:
        style_source.close()  # the app closed it already, unless the start failed
    if idle_clip is not None:
        idle_clip.close()
    if server is not None:
        server.stop()  # after the outputs closed: the preview streams have ended
    if osc is not None:
        osc.stop()


def run_live(cfg: Config, job: LiveJob) -> int:
    """``stylize live`` from a validated config and the style list."""
    live = cfg.live
    midi_mapping = mapping_for(cfg)  # a bad MIDI table: one line before anything opens
    styles = _styles_for(cfg, job)
    closed_picture, server, token = _preflight(cfg)
    source = open_live_source(cfg)
    style_source, osc = _open_inputs(cfg, source, server)
    if style_source is not None:
        style_source.start()  # it connects while the network loads
    idle_clip = None
    window: Optional[WindowOutput] = None
    midi: Optional[MidiControl] = None
    outputs: list[Output] = []  # until the app owns them (a start that fails after opening them closes them)
    try:
        idle_clip = open_idle_clip(cfg)
        window, startup = open_start_window(cfg, source)  # something on screen at once
        if window is not None:
            print_help(cfg.kiosk.enabled, cfg.kiosk.exit_keys)
        loaded = call_interruptibly("load", lambda: _load(cfg, styles, source, startup.progress if startup else log.debug),
                                    between=startup.tick if startup else None)
        if startup is not None and startup.stopping:
            log.info("stopped before the show started")
            return 0
        controller = _controller_for(cfg, loaded)
        motion = MotionMeter(cfg.show.idle_motion) if cfg.show.idle_s > 0 else None
        surfaces = show_surfaces(controller, cfg, motion=motion, fresh=job.fresh)  # saved state back before the pipeline reads it
        governor = open_governor(cfg, source, controller)
        midi = open_midi(cfg, controller, midi_mapping, next((s for s in surfaces if isinstance(s, ShowMemory)), None))
        pipeline = _pipeline_for(cfg, source, loaded, controller, motion, governor, idle_clip is not None, len(styles))
        outputs = _open_outputs(cfg, source, server, token, controller, loaded, style_source)
        if osc is not None:
            osc.start(controller)
        taker = _taker_for(cfg, controller, loaded, style_source)
        app = LiveApp(pipeline, live, surfaces=surfaces, closed_picture=closed_picture,
                      idle_clip=idle_clip, kiosk=cfg.kiosk, outputs=outputs, window=window, taker=taker,
                      style_source=style_source)
        window, outputs = None, []  # the app's outputs own them now
        _report(app, app.run(), pipeline.dropped, live.record)  # SIGTERM and Ctrl-C (interrupts) finish the files first
        if app.source_ended and not source.has_an_end:  # a service manager must hear that the show died
            raise MediaError(f"{source.describe()} stopped delivering frames; the show ends there "
                             "(--no-reconnect / live.reconnect: false)")
        return 0
    finally:
        _close_outputs(outputs)
        _close_inputs(midi, window, source, style_source, idle_clip, server, osc)
