"""A daemon stream with an SLA and no branch is run by the scheduler."""

from __future__ import annotations

from hand_profile import SPACE_YAML, space, write_profile

from approxrt.branch import Branch
from approxrt.config import load_config
from approxrt.loop import FixedBranch
from approxrt.scheduler.policy import AdaptivePolicy
from approxrt.serve.manager import StreamManager
from approxrt.serve.spec import ServeSettings, StreamSpec


def test_an_sla_without_a_branch_gets_the_scheduler_over_the_profiled_space(tmp_path):
    profile = write_profile(tmp_path / "profile").path
    (tmp_path / "space.yaml").write_text(SPACE_YAML)
    config = load_config(tmp_path / "space.yaml")
    manager = StreamManager(ServeSettings(profile=str(profile)), config)
    adaptive = StreamSpec(id="a", source="x.avi", sla_ms=20)
    policy, branches = manager._policy(adaptive)
    assert isinstance(policy, AdaptivePolicy)
    assert set(branches) == set(space())
    again, _ = manager._policy(StreamSpec(id="b", source="x.avi", sla_ms=10))
    assert again is not policy and again.models is policy.models  # loaded once
    fixed = StreamSpec(id="c", source="x.avi", branch="yolox_nano/s320/si1")
    assert manager._policy(fixed) == (None, [Branch.parse("yolox_nano/s320/si1")])
    assert not isinstance(policy, FixedBranch)
