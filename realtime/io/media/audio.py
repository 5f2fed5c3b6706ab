"""The source's sound into an output: which streams, copied or re-encoded, and on what clock.

Why one module: ``stylize video`` and the cluster's joiner both carry a source's sound into a
stylized picture, and must agree on every rule (what a container takes as it is, what MP4 players
accept, how sound ahead of the first frame is cut).  An :class:`AudioRoute` says what happens to
one source stream; an :class:`AudioMuxer` makes the output streams and writes packets and frames,
shifted so that the first stylized frame is time zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .decode import stream_time

MP4_AUDIO = {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"}


@dataclass(frozen=True)
class AudioRoute:
    """One source audio stream's way into the output: copied as it is, or re-encoded with
    ``encoder`` (AAC where the container takes it)."""

    source: Any  # the input stream (PyAV)
    copy: bool
    encoder: str

    @property
    def index(self) -> int:
        return self.source.index

    @property
    def mode(self) -> str:
        return "copied" if self.copy else f"re-encoded {self.source.codec_context.name}->{self.encoder}"


# Typed messages that carry sound between threads (in demux order).
@dataclass
class AudioPacket:
    """An audio packet to copy as it is."""

    packet: Any


@dataclass
class AudioFrame:
    """A decoded audio frame to re-encode (the container cannot take the source's codec)."""

    frame: Any
    stream_index: int


Sound = Union[AudioPacket, AudioFrame]


def plan_audio(out: Any, audio_in: list) -> tuple[dict[int, AudioRoute], str]:
    """Input audio stream index -> its route into ``out`` (an open output container), and a
    summary for the log (copied / re-encoded a->b / none).

    Copied when the output container accepts the codec, else re-encoded (AAC where possible).
    """
    routes: dict[int, AudioRoute] = {}
    supported = getattr(out, "supported_codecs", None) or set()
    if out.format.name == "mp4":
        # FFmpeg accepts raw PCM in MP4, but players do not: only copy what players expect there.
        supported = supported & MP4_AUDIO
    encoder = "aac" if "aac" in supported else out.default_audio_codec
    for a in audio_in:
        copy = a.codec_context.name in supported and bool(a.codec_context.sample_rate)
        routes[a.index] = AudioRoute(a, copy, encoder)
    modes = {r.mode for r in routes.values()}
    return routes, (", ".join(sorted(modes)) or "none")


def demux_sound(packet: Any, route: AudioRoute) -> list[Sound]:
    """A demuxed audio packet as the messages its route needs (the packet, or its decoded frames)."""
    if route.copy:
        return [AudioPacket(packet)]
    return [AudioFrame(af, packet.stream.index) for af in packet.decode()]


def sound_time(item: Sound, t_first: float, default: float) -> float:
    """Seconds from the video stream's start (``t_first``: its start in the file's clock);
    ``default`` for a frame without a timestamp."""
    if isinstance(item, AudioPacket):
        return stream_time(item.packet.pts, item.packet.time_base, t_first, default)
    return stream_time(item.frame.pts, item.frame.time_base, t_first, default)


class AudioMuxer:
    """The source's sound into ``out``: makes the output streams (call it right after the video
    stream, so video stays stream 0), then copies packets and re-encodes frames, all shifted so
    that ``t_zero`` (the first stylized frame, in the file's clock) is the output's time zero."""

    def __init__(self, out: Any, routes: dict[int, AudioRoute], t_zero: float) -> None:
        self.out, self.t_zero = out, t_zero
        self._streams: dict[int, Any] = {i: self._add_stream(r) for i, r in routes.items()}
        self._copy = {i: r.copy for i, r in routes.items()}
        self._offsets: dict[int, int] = {}

    def _add_stream(self, route: AudioRoute) -> Any:
        a = route.source
        if route.copy:
            o = self.out.add_stream_from_template(a)
            try:
                o.metadata.update({k: v for k, v in a.metadata.items() if k in ("language", "title")})
            except Exception:  # noqa: BLE001 - tags are nice to have
                pass
            return o
        o = self.out.add_stream(route.encoder, rate=a.codec_context.sample_rate or 48000)
        try:
            o.layout = a.codec_context.layout
        except Exception:  # noqa: BLE001 - keep the encoder's default layout
            pass
        return o

    def _offset(self, index: int, time_base: Any) -> int:
        return self._offsets.setdefault(index, int(round(self.t_zero / float(time_base))))

    def mux(self, item: Sound) -> None:
        if isinstance(item, AudioPacket):
            packet = item.packet
            o = self._streams[packet.stream.index]
            off = self._offset(o.index, packet.time_base)
            packet.pts -= off
            if packet.dts is not None:
                packet.dts -= off
            if off and packet.pts + (packet.duration or 0) <= 0:
                return  # wholly before --start (encoder priming at pts < 0 is kept otherwise)
            packet.stream = o
            self.out.mux(packet)
        else:
            af = item.frame
            o = self._streams[item.stream_index]
            off = self._offset(o.index, af.time_base)
            if af.pts is not None:
                af.pts -= off
                if off and af.pts + af.samples <= 0:
                    return
            for p in o.encode(af):
                self.out.mux(p)

    def flush(self) -> None:
        """Drain the encoders of re-encoded streams."""
        for i, o in self._streams.items():
            if not self._copy[i]:
                for p in o.encode(None):
                    self.out.mux(p)

