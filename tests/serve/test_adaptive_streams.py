"""A daemon stream with an SLA and no branch is run by the scheduler, planned on
the stream's own thread so that no request waits for a calibration."""

from __future__ import annotations

import threading

import pytest
from hand_profile import SPACE_YAML, space, write_profile
from serve_parts import wait_until

from approxrt import adaptive
from approxrt.branch import Branch
from approxrt.config import load_config
from approxrt.loop import FixedBranch
from approxrt.scheduler.policy import AdaptivePolicy
from approxrt.serve.manager import StreamManager
from approxrt.serve.spec import ServeSettings, StreamSpec


@pytest.fixture
def manager(tmp_path, models_dir):
    profile = write_profile(tmp_path / "profile").path
    (tmp_path / "space.yaml").write_text(SPACE_YAML)
    config = load_config(tmp_path / "space.yaml").replace(models_dir=str(models_dir))
    manager = StreamManager(ServeSettings(profile=str(profile)), config)
    yield manager
    manager.shutdown()


def test_an_sla_without_a_branch_gets_the_scheduler_over_the_profiled_space(manager):
    policy, branches = manager._adaptive_plan("a")
    assert isinstance(policy, AdaptivePolicy)
    assert set(branches) == set(space())
    again, _ = manager._adaptive_plan("a")
    assert again is not policy and again.models is policy.models  # loaded once
    fixed = StreamSpec(id="c", source="x.avi", branch="yolox_nano/s320/si1")
    policy, branches = manager._fixed_plan(fixed)()
    assert isinstance(policy, FixedBranch)
    assert policy.branch == Branch.parse("yolox_nano/s320/si1")
    assert branches == [Branch.parse("yolox_nano/s320/si1")]


def test_a_slow_first_plan_holds_neither_the_request_nor_the_others(
    manager, monkeypatch, pets_video
):
    """The daemon's fuzz test once added an adaptive stream on a machine with no
    calibration: the request, and /metrics behind the manager's lock, waited a
    minute for it. Now the stream shows "preparing" and everything else answers."""
    release = threading.Event()
    load = adaptive.load_run_models

    def slow_load(*args, **kwargs):
        assert release.wait(30), "the test never released the calibration"
        return load(*args, **kwargs)

    monkeypatch.setattr(adaptive, "load_run_models", slow_load)
    spec = StreamSpec(id="a", source=str(pets_video), sla_ms=50, loop=True)
    worker = manager.add(spec)
    assert worker.state == "preparing" and worker.branch is None
    manager.refresh_gauges()  # what /metrics does, under the manager's lock
    assert [w.spec.id for w in manager.list()] == ["a"]
    release.set()
    wait_until(lambda: worker.counts.processed >= 2, 60, "the adaptive stream")
    assert worker.state == "running" and isinstance(worker.policy, AdaptivePolicy)
    assert worker.branch in set(space())


def test_a_branch_set_while_planning_is_kept(manager, monkeypatch, pets_video):
    release = threading.Event()
    load = adaptive.load_run_models
    monkeypatch.setattr(
        adaptive, "load_run_models", lambda *a, **k: release.wait(30) and load(*a, **k)
    )
    worker = manager.add(StreamSpec(id="a", source=str(pets_video), sla_ms=50))
    chosen = "yolox_nano/s224/si2/kcf/ds2"
    manager.set_branch("a", chosen)
    release.set()
    wait_until(lambda: worker.counts.processed >= 2, 60, "the stream")
    assert isinstance(worker.policy, FixedBranch)
    assert worker.policy.branch == Branch.parse(chosen)
    assert str(worker.latest.branch) == chosen
