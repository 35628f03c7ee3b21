"""Frame sources: files, image folders, cameras, network streams, synthetic scenes.

from approxrt.sources import open_source

with open_source("clip.mp4") as source:      # or "0", "rtsp://...", a folder,
    for frame in source:                      # or "synthetic:objects=5,seed=1"
        print(frame.index, frame.timestamp_s, frame.decode_ms)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from approxrt.sources.base import Source, SourceState, StreamStateError
from approxrt.sources.image_folder import ImageFolderSource
from approxrt.sources.live import CameraSource, LiveSource, StreamSource, is_stream_url
from approxrt.sources.realtime import (
    ClockedSource,
    RealtimeSource,
    StreamClock,
    clocked,
    stamp_finish_times,
)
from approxrt.sources.scene_config import SPEC_PREFIX, SceneConfig
from approxrt.sources.synthetic import SyntheticScene, SyntheticSource
from approxrt.sources.video import VideoFileSource

ACCEPTED_FORMS = (
    "a camera index (e.g. '0'), "
    "a stream URL (rtsp://, rtsps://, http://, https://), "
    "an image folder (MOTChallenge img1/ or plain images), "
    "a video file path, "
    "or 'synthetic:key=value,...' (e.g. 'synthetic:objects=5,size=60-120,seed=0')"
)


def open_source(
    spec: str | int | Path, *, realtime: bool = False, **options: Any
) -> Source:
    """Open the source that ``spec`` names; ``options`` go to its constructor.

    Args:
        spec: ``"0"`` (camera), ``"rtsp://..."``/``"http(s)://..."`` (stream), a
            directory (image folder), an existing file (video) or
            ``"synthetic:key=value,..."`` (see `SceneConfig` for the keys).
        realtime: replay a file, folder or synthetic scene at its own frame
            rate, keeping only the newest frame while the reader is busy (a
            `RealtimeSource`); refused for cameras and streams, which are live.
        **options: keyword arguments of the chosen source class, e.g.
            ``source_id=``, ``fps=``, ``reconnect_attempts=``.

    Raises:
        ValueError: ``spec`` is none of the accepted forms, or the source named
            cannot be opened (or, with ``realtime``, is live).
    """
    if realtime and _names_live_source(spec):
        raise ValueError(
            f"realtime: {str(spec)!r} is a camera or stream, which arrives in real "
            "time already; realtime replay is for files, image folders and "
            "synthetic scenes"
        )
    source = _open(spec, **options)
    if not realtime:
        return source
    try:
        return RealtimeSource(source)
    except ValueError:
        source.close()
        raise


def _names_live_source(spec: str | int | Path) -> bool:
    text = str(spec).strip()
    return isinstance(spec, int) or text.isdigit() or is_stream_url(text)


def _open(spec: str | int | Path, **options: Any) -> Source:
    if isinstance(spec, bool) or not isinstance(spec, str | int | Path):
        raise TypeError(f"spec: expected a str, int or Path, got {type(spec).__name__}")
    if isinstance(spec, int):
        return CameraSource(spec, **options)
    text = str(spec).strip()
    if text.isdigit():
        return CameraSource(int(text), **options)
    if is_stream_url(text):
        return StreamSource(text, **options)
    if text.split(":", 1)[0].lower() == SPEC_PREFIX and not Path(text).exists():
        return SyntheticSource(SyntheticScene.from_spec(text), **options)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, **options)
    if path.is_file():
        return VideoFileSource(path, **options)
    raise ValueError(
        f"source {text!r}: no such file or directory, and not a camera index, stream "
        f"URL or synthetic spec; accepted forms: {ACCEPTED_FORMS}"
    )


__all__ = [
    "ACCEPTED_FORMS",
    "CameraSource",
    "ClockedSource",
    "ImageFolderSource",
    "LiveSource",
    "RealtimeSource",
    "SceneConfig",
    "Source",
    "SourceState",
    "StreamClock",
    "StreamSource",
    "StreamStateError",
    "SyntheticScene",
    "SyntheticSource",
    "VideoFileSource",
    "clocked",
    "open_source",
    "stamp_finish_times",
]
