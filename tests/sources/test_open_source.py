"""open_source picks the source from the spec's form, and says which forms exist."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from approxrt.sources import (
    CameraSource,
    ImageFolderSource,
    StreamSource,
    SyntheticSource,
    VideoFileSource,
    open_source,
)


class StandInCapture:
    """Opens anything and yields grey frames: for dispatch checks only."""

    def __init__(self, spec):
        self.spec = spec

    def isOpened(self) -> bool:
        return True

    def read(self):
        return True, np.zeros((8, 8, 3), np.uint8)

    def get(self, prop) -> float:
        return 0.0

    def set(self, prop, value) -> bool:
        return True

    def release(self) -> None:
        pass


@pytest.fixture
def image_folder(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((16, 16, 3), np.uint8))
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("0", CameraSource),
        (" 2 ", CameraSource),
        (1, CameraSource),
        ("rtsp://127.0.0.1:8554/cam", StreamSource),
        ("HTTP://127.0.0.1/stream.mjpg", StreamSource),
        ("https://example.invalid/live", StreamSource),
    ],
)
def test_camera_indices_and_stream_urls_open_live_sources(spec, kind):
    with open_source(spec, capture_factory=StandInCapture) as source:
        assert type(source) is kind
        assert source.is_live


def test_a_directory_opens_an_image_folder(image_folder):
    with open_source(str(image_folder)) as source:
        assert isinstance(source, ImageFolderSource)


def test_an_existing_file_opens_a_video(pets_video):
    with open_source(str(pets_video), source_id="pets") as source:
        assert isinstance(source, VideoFileSource)
        assert next(source).source_id == "pets"


@pytest.mark.parametrize(
    "spec", ["synthetic", "synthetic:", "synthetic:frames=4,seed=3"]
)
def test_a_synthetic_spec_opens_a_synthetic_scene(spec):
    with open_source(spec) as source:
        assert isinstance(source, SyntheticSource)
        assert not source.is_live


def test_synthetic_spec_keys_reach_the_scene():
    with open_source("synthetic:frames=4,objects=2,width=320,height=240") as source:
        frames = list(source)
    assert len(frames) == 4
    assert frames[0].image.shape == (240, 320, 3)
    assert source.scene.config.objects == 2


def test_anything_else_is_a_value_error_listing_the_accepted_forms(tmp_path):
    with pytest.raises(ValueError) as error:
        open_source(str(tmp_path / "missing.mp4"))
    message = str(error.value)
    assert "missing.mp4" in message
    for form in ("camera index", "rtsp://", "image folder", "video file", "synthetic:"):
        assert form in message


def test_an_unknown_synthetic_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"unknown key 'objets'.*objects.*valid keys"):
        open_source("synthetic:objets=3")


def test_a_spec_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="spec"):
        open_source(3.5)
