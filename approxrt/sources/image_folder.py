"""`ImageFolderSource`: a folder of images as a video.

Two layouts are accepted:

- MOTChallenge: ``<sequence>/seqinfo.ini`` (optional) and ``<sequence>/img1/*.jpg``;
  ``seqinfo.ini`` gives ``frameRate`` (and ``imDir`` when it is not ``img1``).
- A plain folder of images (jpg, png, bmp, tif, webp).

Images are ordered by the numbers in their names (``2.jpg`` before ``10.jpg``);
a frame's index is its position in that order, so ``000001.jpg`` is index 0. An
image that cannot be decoded is counted in ``bad_frames`` and skipped.
"""

from __future__ import annotations

import configparser
import re
import time
from pathlib import Path

import cv2

from approxrt.frame import Frame
from approxrt.sources.base import FileSource, is_valid_image, timed_ms

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FPS = 30.0


def natural_key(path: Path) -> tuple:
    """Sort key that compares digit runs as numbers: ``img2`` < ``img10``."""
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts)


def read_seqinfo(path: str | Path) -> dict[str, str]:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini`` as a dict."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep camelCase keys such as frameRate
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise ValueError(
            f"seqinfo {str(path)!r}: not a valid ini file ({error})"
        ) from None
    if "Sequence" not in parser:
        raise ValueError(f"seqinfo {str(path)!r}: missing the [Sequence] section")
    return dict(parser["Sequence"])


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order."""
    images = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return sorted(images, key=natural_key)


class ImageFolderSource(FileSource):
    """Reads a MOTChallenge sequence folder or a plain folder of images.

    Args:
        path: the sequence folder (with ``img1/``) or a folder of images.
        source_id: name carried by every frame; defaults to the folder name.
        fps: frame rate for ``timestamp_s``; defaults to ``seqinfo.ini``'s
            ``frameRate``, else 30.

    Raises:
        ValueError: the folder is missing, holds no images, or none decodes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        source_id: str | None = None,
        fps: float | None = None,
    ) -> None:
        path = Path(path)
        super().__init__(source_id if source_id is not None else path.name)
        if not path.is_dir():
            raise ValueError(f"image folder {str(path)!r}: no such directory")
        self.path = path
        info = (
            read_seqinfo(path / "seqinfo.ini")
            if (path / "seqinfo.ini").is_file()
            else {}
        )
        image_dir = path / info.get("imDir", "img1")
        if not image_dir.is_dir():
            image_dir = path
        self.image_dir = image_dir
        self.images = list_images(image_dir)
        if not self.images:
            raise ValueError(
                f"image folder {str(path)!r}: no images ({', '.join(IMAGE_SUFFIXES)}) "
                f"in {str(image_dir)!r}"
            )
        self.fps = float(fps or _positive_float(info.get("frameRate")) or DEFAULT_FPS)
        self.frame_count = len(self.images)
        self._position = 0
        self._open_first(f"image folder {str(path)!r}")

    def _read_good(self) -> Frame | None:
        while self._position < len(self.images):
            position = self._position
            self._position += 1
            start_s = time.perf_counter()
            image = cv2.imread(str(self.images[position]), cv2.IMREAD_COLOR)
            decode_ms = timed_ms(start_s)
            if is_valid_image(image):
                self._set_size_from(image)
                return Frame(
                    image, position, position / self.fps, self.source_id, decode_ms
                )
            self._count_bad_frame(
                position, f"cannot decode {self.images[position].name}"
            )
        return None

    def _release(self) -> None:
        self._first = None


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value and value > 0 else None
