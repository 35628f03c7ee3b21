"""`VideoFileSource`: frames of a video file through ``cv2.VideoCapture``.

What OpenCV lets us tell apart: ``VideoCapture.read`` returns ``False`` both at the
end of the file and when one frame's data cannot be decoded (the FFmpeg backend
then moves on to the next frame), and it conceals most lighter corruption itself
(it returns a repaired frame with ``True``). So a failed read *before* the
container's frame count is a bad frame: it is counted in ``bad_frames``, logged and
skipped, and its index is left out (indices stay positions in the file, so ground
truth stays aligned). A failed read at or after the frame count ends the stream, as
do ``max_consecutive_failures`` failed reads in a row (the frame count is the
container's claim and can be wrong, e.g. for a truncated file).

The first frame is decoded when the source is opened, so a file that OpenCV opens
but cannot decode fails there, with a ``ValueError`` naming it.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from approxrt.frame import Frame
from approxrt.sources.base import FileSource, is_valid_image, timed_ms

DEFAULT_FPS = 30.0


class VideoFileSource(FileSource):
    """Reads a video file frame by frame.

    Args:
        path: the video file; missing, not a video, or without one decodable
            frame raises ``ValueError`` here.
        source_id: name carried by every frame; defaults to the file name.
        fps: overrides the container's frame rate (used for ``timestamp_s``);
            when neither is known, 30 is assumed.
        max_consecutive_failures: failed reads in a row that end the stream even
            before the container's frame count; raising it tolerates longer
            damaged stretches at the cost of spinning longer on a truncated file.

    Frames carry ``timestamp_s = index / fps`` and ``decode_ms`` = the time of the
    ``read`` call that read and decoded them.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        source_id: str | None = None,
        fps: float | None = None,
        max_consecutive_failures: int = 30,
    ) -> None:
        path = Path(path)
        super().__init__(source_id if source_id is not None else path.name)
        if max_consecutive_failures < 1:
            raise ValueError(
                f"max_consecutive_failures: expected an integer >= 1, "
                f"got {max_consecutive_failures!r}"
            )
        self.path = path
        self.max_consecutive_failures = max_consecutive_failures
        self._capture = _open_capture(path)
        container_fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps or (container_fps if container_fps > 0 else DEFAULT_FPS))
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count > 0 else None
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            self.width, self.height = width, height
        self._position = 0
        self._open_first(f"video file {str(path)!r}")

    def _read_good(self) -> Frame | None:
        failures = 0
        while failures < self.max_consecutive_failures:
            position = self._position
            start_s = time.perf_counter()
            ok, image = self._capture.read()
            decode_ms = timed_ms(start_s)
            self._position += 1
            if ok and is_valid_image(image):
                self._set_size_from(image)
                return Frame(
                    image, position, position / self.fps, self.source_id, decode_ms
                )
            if self.frame_count is None or position >= self.frame_count:
                return None
            failures += 1
            self._count_bad_frame(position, "read or decode failed")
        return None

    def _release(self) -> None:
        self._capture.release()


def _open_capture(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise ValueError(f"video file {str(path)!r}: no such file")
    if not path.is_file():
        raise ValueError(f"video file {str(path)!r}: not a regular file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(
            f"video file {str(path)!r}: OpenCV cannot open it as a video "
            "(not a video, corrupt, or a codec this OpenCV build lacks)"
        )
    return capture
