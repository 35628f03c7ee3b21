import pytest

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.space import BranchSpace, branch_problem, validate_branch
from approxrt.config import load_config


def test_the_default_space_is_the_cross_product_without_tracker_duplicates():
    config = load_config()
    space = BranchSpace.from_config(config)
    tracked_intervals = [si for si in config.sampling_intervals if si > 1]
    per_kernel = 1 + len(tracked_intervals) * len(config.trackers) * len(
        config.downsamples
    )
    kernels = sum(
        len(sizes) * (len(config.proposals) if name.startswith("frcnn") else 1)
        for name, sizes in config.input_sizes.items()
        if name in config.detectors
    )
    assert len(space.kernels) == kernels
    assert len(space) == kernels * per_kernel
    assert len(set(space)) == len(space)


def test_si1_branches_have_no_tracker_and_proposals_only_go_to_two_stage_detectors():
    space = BranchSpace.from_config(load_config())
    for branch in space:
        assert (branch.tracker is None) == (branch.sampling_interval == 1)
        assert (branch.proposals is not None) == branch.detector.startswith("frcnn")


def test_membership_and_round_trip_of_every_name():
    space = BranchSpace.build(
        {"yolox_nano": [320, 416]}, [1, 4], ["kcf", "flow"], [1, 2]
    )
    assert Branch.parse("yolox_nano/s416/si4/flow/ds2") in space
    assert Branch.parse("yolox_nano/s512/si4/flow/ds2") not in space
    assert all(Branch.parse(str(b)) == b for b in space)
    assert space.kernels == [
        ("yolox_nano", DetectorKnobs(320)),
        ("yolox_nano", DetectorKnobs(416)),
    ]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"input_sizes": {"yolox_nano": [300]}}, "multiple of 32"),
        ({"input_sizes": {"yolo": [320]}}, "unknown detector 'yolo'; valid detectors"),
        ({"trackers": ["kfc"]}, "unknown tracker 'kfc'; valid trackers"),
        ({"input_sizes": {"frcnn_mbv3": [320]}, "proposals": []}, "proposals list"),
        ({"sampling_intervals": [0]}, "sampling_interval"),
        ({"downsamples": [0]}, "downsample"),
    ],
)
def test_invalid_knob_values_are_refused_with_the_reason(kwargs, reason):
    values = {
        "input_sizes": {"yolox_nano": [320]},
        "sampling_intervals": [1, 4],
        "trackers": ["kcf"],
        "downsamples": [1],
        "proposals": [10],
        **kwargs,
    }
    with pytest.raises(ValueError, match=reason):
        BranchSpace.build(**values)


def test_a_config_detector_without_sizes_is_named():
    config = load_config(
        detectors=["yolox_nano", "nanodet_m"], input_sizes={"yolox_nano": [320]}
    )
    with pytest.raises(ValueError, match=r"no sizes given for \['nanodet_m'\]"):
        BranchSpace.from_config(config)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("yolox_nano/s416/si4/kcf/ds2", None),
        ("frcnn_mbv3/s320/p100/si8/kcf/ds1", None),
        ("yolox_nano/s416/p10/si1", "one-stage detector"),
        ("frcnn_r50/s320/si1", "two-stage detector"),
        ("ssd/s300/si1", "unknown detector"),
        ("yolox_nano/s416/si4/tld/ds1", "unknown tracker"),
    ],
)
def test_branch_problem_explains_branches_that_cannot_run(name, problem):
    found = branch_problem(Branch.parse(name))
    if problem is None:
        assert found is None
        assert validate_branch(Branch.parse(name)) == Branch.parse(name)
    else:
        assert problem in found
        with pytest.raises(ValueError, match=problem):
            validate_branch(Branch.parse(name))
