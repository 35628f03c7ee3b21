"""approxrt: adaptive video analytics at the edge."""

import os

# OpenCV's trackers call the OpenBLAS bundled with opencv-python (0.3.15) on
# tiny matrices. Its thread pool hung KCF's update for minutes here (measured:
# a spinning ztpmv_thread, reproducible while another process kept a core busy
# and a second Python thread ran), and a pool buys nothing at these sizes: one
# thread each, unless the user chose otherwise. Set before numpy or cv2 loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from approxrt.branch import Branch, DetectorKnobs
from approxrt.detections import Detections
from approxrt.frame import Frame

__all__ = ["Branch", "Detections", "DetectorKnobs", "Frame"]
