"""`ProfileCoverage`: live content beyond the accuracy profile is measured and named."""

import logging
import math

import pytest
from test_accuracy_model import make_tables, space

from approxrt.scheduler.accuracy_model import ContentAccuracyModel
from approxrt.scheduler.content import Content
from approxrt.scheduler.coverage import WARN_BEYOND_SD, ProfileCoverage
from approxrt.scheduler.live_accuracy import LiveAccuracy
from approxrt.scheduler.profile_models import ProfileModels

FRAME = {"frame_w": 1280, "frame_h": 720}


@pytest.fixture(scope="module")
def model():
    # Profiled segments hold 1-40 objects of 12-120 px moving 0.5-12 px a frame.
    segments, features = make_tables(videos=2, segments=8, darkness=False)
    return ContentAccuracyModel().fit(segments, features)


def scene(objects=10.0, size_px=60.0, speed_px=3.0):
    return {
        "objects": objects,
        "object_size_px": size_px,
        "object_speed_px": speed_px,
        **FRAME,
    }


def test_content_within_the_profile_is_not_beyond_it(model, caplog):
    coverage = ProfileCoverage(model)
    with caplog.at_level(logging.WARNING):
        assert coverage.beyond(scene()) == 0.0
        # Speed not known yet is no evidence either way.
        assert coverage.beyond(scene(speed_px=float("nan"))) == 0.0
    assert not caplog.records


def test_a_crowd_beyond_the_profile_is_measured_and_named_once(model, caplog):
    coverage = ProfileCoverage(model)
    with caplog.at_level(logging.WARNING):
        twice = coverage.beyond(scene(objects=200))
        much_more = coverage.beyond(scene(objects=2000))
    assert 0 < twice < much_more
    (record,) = caplog.records  # the second decision beyond it adds no warning
    message = record.getMessage()
    assert "objects per frame 200" in message
    assert "profiled" in message and "approxrt profile accuracy" in message


def test_each_decision_reports_how_far_its_content_lay_beyond(model):
    models = ProfileModels(
        latency=None, accuracy_table=model.table_, content_light=model
    )
    live = LiveAccuracy(models, space())
    crowd = Content(
        objects=200, object_speed_px=3.0, known=True, reference_size_px=60.0
    )
    live.predict(crowd, (1280, 720), frame_index=0)
    assert live.beyond_profile > 0
    usual = Content(objects=10, object_speed_px=3.0, known=True, reference_size_px=60.0)
    live.predict(usual, (1280, 720), frame_index=1)
    assert live.beyond_profile == 0.0


def test_content_just_past_the_edge_is_recorded_without_a_warning(model, caplog):
    coverage = ProfileCoverage(model)
    column = model.light_used_.index("log_objects")
    most_objects = math.expm1(model.content_range_[1, column])
    with caplog.at_level(logging.WARNING):
        just_past = coverage.beyond(scene(objects=most_objects * 1.01))
    assert 0 < just_past < WARN_BEYOND_SD
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert coverage.beyond(scene(objects=most_objects * 3)) >= WARN_BEYOND_SD
    assert len(caplog.records) == 1
