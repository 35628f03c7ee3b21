"""`BranchSpace`: the cross product of knob values that a run may choose from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from approxrt.branch import Branch, DetectorKnobs
from approxrt.branches.detectors.registry import detector_class
from approxrt.branches.trackers.registry import TRACKERS
from approxrt.config import Config


def branch_problem(branch: Branch) -> str | None:
    """Why ``branch`` cannot run (unknown detector or tracker, bad knobs), or None."""
    try:
        family = detector_class(branch.detector)
    except ValueError as error:
        return str(error)
    problem = family.knob_problem(branch.knobs)
    if problem:
        return problem
    if branch.tracker is not None and branch.tracker not in TRACKERS:
        return (
            f"unknown tracker {branch.tracker!r}; valid trackers: "
            f"{', '.join(sorted(TRACKERS))}"
        )
    return None


def validate_branch(branch: Branch) -> Branch:
    """``branch`` itself, or a ValueError naming what is wrong with it."""
    problem = branch_problem(branch)
    if problem:
        raise ValueError(f"branch {branch}: {problem}")
    return branch


@dataclass(frozen=True)
class BranchSpace:
    """Every branch built from per-detector sizes and shared knob lists.

    A branch with ``sampling_interval == 1`` has no tracker, so the tracker and
    downsample lists only multiply the branches with longer groups of frames;
    proposals only multiply two-stage detectors.
    """

    branches: tuple[Branch, ...]

    @classmethod
    def build(
        cls,
        input_sizes: dict[str, Sequence[int]],
        sampling_intervals: Sequence[int],
        trackers: Sequence[str],
        downsamples: Sequence[int],
        proposals: Sequence[int] = (),
    ) -> BranchSpace:
        """Cross product of the values; any invalid value is refused with its reason."""
        branches = []
        for detector, sizes in input_sizes.items():
            for knobs in _detector_knobs(detector, sizes, proposals):
                branches += _with_tracking(
                    detector, knobs, sampling_intervals, trackers, downsamples
                )
        for branch in branches:
            validate_branch(branch)
        return cls(tuple(dict.fromkeys(branches)))

    @classmethod
    def from_config(
        cls, config: Config, detectors: Sequence[str] | None = None
    ) -> BranchSpace:
        """The space of ``config`` (optionally only some of its detectors)."""
        chosen = list(detectors or config.detectors)
        missing = [d for d in chosen if d not in config.input_sizes]
        if missing:
            raise ValueError(f"config input_sizes: no sizes given for {missing}")
        return cls.build(
            {d: config.input_sizes[d] for d in chosen},
            config.sampling_intervals,
            config.trackers,
            config.downsamples,
            config.proposals,
        )

    def __iter__(self) -> Iterator[Branch]:
        return iter(self.branches)

    def __len__(self) -> int:
        return len(self.branches)

    def __contains__(self, branch: object) -> bool:
        return branch in self.branches

    @property
    def kernels(self) -> list[tuple[str, DetectorKnobs]]:
        """Distinct (detector, knobs) pairs: what start-up warms and switching costs."""
        return list(dict.fromkeys(b.kernel for b in self.branches))


def _detector_knobs(
    detector: str, sizes: Sequence[int], proposals: Sequence[int]
) -> list[DetectorKnobs]:
    two_stage = detector_class(detector).two_stage
    if two_stage and not proposals:
        raise ValueError(
            f"{detector} is two-stage: the proposals list must not be empty"
        )
    return [
        DetectorKnobs(size, p)
        for size in sizes
        for p in (proposals if two_stage else [None])
    ]


def _with_tracking(
    detector: str,
    knobs: DetectorKnobs,
    sampling_intervals: Sequence[int],
    trackers: Sequence[str],
    downsamples: Sequence[int],
) -> list[Branch]:
    size, proposals = knobs.input_size, knobs.proposals
    branches = []
    for si in sampling_intervals:
        if si == 1:
            branches.append(Branch(detector, size, proposals, 1))
        else:
            branches += [
                Branch(detector, size, proposals, si, tracker, ds)
                for tracker in trackers
                for ds in downsamples
            ]
    return branches
