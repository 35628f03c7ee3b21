from contextlib import nullcontext as does_not_raise

import pytest

from approxrt.branch import Branch, DetectorKnobs


@pytest.mark.parametrize(
    "name",
    [
        "yolox_nano/s416/si1",
        "yolox_nano/s320/si4/medianflow/ds2",
        "frcnn_mbv3/s320/p100/si8/kcf/ds1",
        "fastestdet/s224/si100/flow/ds4",
    ],
)
def test_a_branch_name_round_trips_through_parse(name):
    branch = Branch.parse(name)
    assert str(branch) == name
    assert Branch.parse(str(branch)) == branch


def test_parse_reads_every_knob_of_a_two_stage_branch():
    branch = Branch.parse("frcnn_mbv3/s320/p100/si8/kcf/ds2")
    assert branch == Branch("frcnn_mbv3", 320, 100, 8, "kcf", 2)
    assert branch.knobs == DetectorKnobs(320, 100)
    assert branch.kernel == ("frcnn_mbv3", DetectorKnobs(320, 100))


def test_a_tracker_without_downsample_means_downsample_one():
    assert Branch.parse("yolox_nano/s320/si4/kcf") == Branch(
        "yolox_nano", 320, None, 4, "kcf", 1
    )


def test_branches_are_hashable_values():
    a = Branch.parse("yolox_nano/s320/si4/kcf/ds2")
    b = Branch.parse("yolox_nano/s320/si4/kcf/ds2")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


@pytest.mark.parametrize(
    ("name", "expectation"),
    [
        ("yolox_nano/s416/si1", does_not_raise()),
        (
            "yolox_nano/416/si1",
            pytest.raises(ValueError, match="does not have the shape"),
        ),
        ("yolox_nano/s416", pytest.raises(ValueError, match="does not have the shape")),
        ("yolox_nano/s416/si4/kcf/ds", pytest.raises(ValueError, match="shape")),
        ("YOLOX/s416/si1", pytest.raises(ValueError, match="shape")),
        (
            "yolox_nano/s416/si1/kcf/ds1",
            pytest.raises(ValueError, match="nothing to track"),
        ),
        ("yolox_nano/s416/si4", pytest.raises(ValueError, match="needs a tracker")),
        ("yolox_nano/s0/si1", pytest.raises(ValueError, match="input_size")),
        ("yolox_nano/s416/si0", pytest.raises(ValueError, match="sampling_interval")),
        ("yolox_nano/s416/si4/kcf/ds0", pytest.raises(ValueError, match="downsample")),
    ],
)
def test_parse_rejects_bad_names_with_the_reason(name, expectation):
    with expectation:
        Branch.parse(name)


def test_downsample_without_a_tracker_is_refused():
    with pytest.raises(ValueError, match="only meaningful with a tracker"):
        Branch("yolox_nano", 416, None, 1, None, 2)
