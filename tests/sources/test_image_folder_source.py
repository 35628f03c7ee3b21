"""ImageFolderSource on MOTChallenge-style and plain folders of real PETS frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from approxrt.sources import ImageFolderSource


@pytest.fixture(scope="module")
def pets_images(pets_video) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(pets_video))
    frames = [capture.read()[1] for _ in range(20)]
    capture.release()
    return frames


def write_images(folder, frames, name="{:06d}.jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, frame in enumerate(frames, start=1):
        cv2.imwrite(
            str(folder / name.format(number)), frame, [cv2.IMWRITE_JPEG_QUALITY, 95]
        )


def closest_frame(image: np.ndarray, frames: list[np.ndarray]) -> int:
    errors = [np.abs(image.astype(np.int16) - f).mean() for f in frames]
    return int(np.argmin(errors))


def test_reads_a_mot_sequence_at_its_seqinfo_frame_rate(tmp_path, pets_images):
    sequence = tmp_path / "PETS-test"
    write_images(sequence / "img1", pets_images)
    (sequence / "seqinfo.ini").write_text(
        "[Sequence]\nname=PETS-test\nimDir=img1\nframeRate=7\nseqLength=20\n"
        "imWidth=480\nimHeight=360\nimExt=.jpg\n"
    )
    with ImageFolderSource(sequence) as source:
        assert (source.fps, source.frame_count) == (7.0, 20)
        assert (source.width, source.height) == (480, 360)
        frames = list(source)
    assert [f.index for f in frames] == list(range(20))
    assert np.allclose([f.timestamp_s for f in frames], np.arange(20) / 7.0)
    assert all(f.decode_ms > 0 and f.source_id == "PETS-test" for f in frames)
    assert [closest_frame(f.image, pets_images) for f in frames] == list(range(20))


def test_a_mot_folder_without_seqinfo_still_reads_img1(tmp_path, pets_images):
    write_images(tmp_path / "seq" / "img1", pets_images[:4])
    with ImageFolderSource(tmp_path / "seq") as source:
        assert source.fps == 30.0
        assert len(list(source)) == 4


def test_plain_folder_images_are_ordered_by_the_numbers_in_their_names(
    tmp_path, pets_images
):
    # Unpadded names: a text sort would put 10.png before 2.png.
    write_images(tmp_path, pets_images[:12], name="{}.png")
    with ImageFolderSource(tmp_path, fps=5) as source:
        frames = list(source)
    assert [closest_frame(f.image, pets_images) for f in frames] == list(range(12))
    assert frames[-1].timestamp_s == pytest.approx(11 / 5)


def test_an_unreadable_image_is_counted_and_skipped(tmp_path, pets_images):
    write_images(tmp_path, pets_images[:6])
    (tmp_path / "000004.jpg").write_bytes(b"not a jpeg at all")
    with ImageFolderSource(tmp_path) as source:
        indices = [f.index for f in source]
    assert indices == [0, 1, 2, 4, 5]
    assert source.bad_frames == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such directory"),
        (lambda p: p, "no images"),
    ],
)
def test_a_missing_or_empty_folder_is_a_value_error(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        ImageFolderSource(make(tmp_path))
