"""`KernelRecall`: a kernel's share of its peers' boxes, from detection frames."""

import pytest

from approxrt.scheduler.recall import KernelRecall

KERNELS = ["nanodet_m/s320", "yolox_nano/s224", "yolox_nano/s416"]


def test_a_kernel_blind_to_the_scene_is_scaled_down_and_its_peers_are_not():
    recall = KernelRecall(KERNELS)
    recall.update("nanodet_m/s320", 10, boxes=24)
    recall.update("yolox_nano/s224", 11, boxes=1)
    recall.update("yolox_nano/s224", 12, boxes=0)
    factors = recall.factors(12)
    assert factors[1] < 0.5
    assert factors[0] == factors[2] == 1.0
    # 1 -> 1/2 (1 + 1/24) -> half of that, with the weight of 0.5.
    assert recall.share("yolox_nano/s224", 12) == pytest.approx(0.26, abs=0.01)


def test_one_frame_with_fewer_boxes_costs_nothing():
    recall = KernelRecall(KERNELS)
    recall.update("yolox_nano/s416", 0, boxes=10)
    recall.update("yolox_nano/s224", 1, boxes=3)  # one bad frame: 1 -> 0.65
    assert recall.factors(1)[1] == 1.0


def test_no_peer_a_stale_peer_or_a_near_empty_one_is_no_evidence():
    recall = KernelRecall(KERNELS, window_frames=60, min_peer_boxes=4)
    recall.update("yolox_nano/s224", 0, boxes=0)  # no peer yet
    recall.update("nanodet_m/s320", 1, boxes=20)
    recall.update("yolox_nano/s224", 100, boxes=0)  # the peer is 99 frames old
    recall.update("yolox_nano/s416", 101, boxes=3)  # a peer of 3 boxes
    recall.update("yolox_nano/s224", 102, boxes=0)
    recall.update("yolox_nano/s224", 103, boxes=0)
    assert recall.factors(103) is None  # nothing to scale: decisions skip it


def test_the_shortfall_fades_so_the_kernel_is_tried_again():
    recall = KernelRecall(KERNELS, half_life_frames=100)
    recall.update("nanodet_m/s320", 0, boxes=20)
    for frame in (1, 2, 3):
        recall.update("yolox_nano/s224", frame, boxes=0)
    low = recall.share("yolox_nano/s224", 3)
    assert low < 0.2
    assert recall.share("yolox_nano/s224", 103) == pytest.approx(1 - (1 - low) / 2)
    assert recall.factors(1000)[1] > 0.99


def test_a_kernel_outside_the_list_still_serves_as_a_peer():
    recall = KernelRecall(["yolox_nano/s224"])
    recall.update("fastestdet/s352", 0, boxes=12)
    recall.update("yolox_nano/s224", 1, boxes=0)
    recall.update("yolox_nano/s224", 2, boxes=0)
    assert recall.factors(2)[0] < 0.5
