"""approxrt: adaptive video analytics at the edge."""

from approxrt.branch import Branch, DetectorKnobs
from approxrt.detections import Detections
from approxrt.frame import Frame

__all__ = ["Branch", "Detections", "DetectorKnobs", "Frame"]
