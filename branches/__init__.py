"""The multi-branch kernel: detectors, trackers and the branch space."""
