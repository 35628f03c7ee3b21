"""Writing a `SyntheticScene` to disk: video, MOTChallenge gt, COCO gt, seqinfo.ini.

Boxes less than ``min_visibility`` visible (hidden by other objects or outside the
frame) are written as "do not score" rather than dropped, the way standard
evaluators expect: MOTChallenge flag 0 in column 7 (as in the PETS gt), and COCO
``iscrowd: 1``, which pycocotools and faster-coco-eval treat as an ignore region (a
detection on it is neither a hit nor a false positive).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from approxrt.classes import COCO_CATEGORY_IDS, COCO_CLASSES

if TYPE_CHECKING:
    from approxrt.sources.synthetic import SyntheticScene

DEFAULT_MIN_VISIBILITY = 0.5
CODECS = {"mp4v": ".mp4", "MJPG": ".avi"}


def write_video(scene: SyntheticScene, path: str | Path, codec: str = "mp4v") -> Path:
    """Every frame of ``scene`` into a video file that OpenCV reads back.

    Args:
        scene: the scene to render.
        path: the output file; ``.mp4`` for mp4v, ``.avi`` for MJPG.
        codec: ``"mp4v"`` (small, lossy) or ``"MJPG"`` (larger, per-frame JPEG).

    Raises:
        ValueError: unknown codec, or OpenCV cannot write ``path``.
    """
    if codec not in CODECS:
        raise ValueError(f"codec: expected one of {', '.join(CODECS)}, got {codec!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = scene.config
    writer = cv2.VideoWriter(
        str(path),
        cv2.VideoWriter_fourcc(*codec),
        config.fps,
        (config.width, config.height),
    )
    if not writer.isOpened():
        raise ValueError(
            f"video file {str(path)!r}: OpenCV cannot write it with codec {codec!r}"
        )
    try:
        for index in range(len(scene)):
            writer.write(scene.frame(index))
    finally:
        writer.release()
    return path


def mot_rows(
    scene: SyntheticScene, min_visibility: float = DEFAULT_MIN_VISIBILITY
) -> list[str]:
    """MOTChallenge gt lines ``frame,id,x,y,w,h,flag,-1,-1,-1`` (1-based frames)."""
    rows = []
    for index in range(len(scene)):
        truth = scene.ground_truth(index)
        visibility = truth.data["visibility"]
        for box, identity, seen in zip(
            truth.xyxy, truth.tracker_id, visibility, strict=True
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            flag = 1 if seen >= min_visibility else 0
            rows.append(
                f"{index + 1},{identity},{x1:g},{y1:g},{x2 - x1:g},{y2 - y1:g},"
                f"{flag},-1,-1,-1"
            )
    return rows


def write_mot_gt(
    scene: SyntheticScene,
    path: str | Path,
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
) -> Path:
    """The MOTChallenge gt file (no class column: MOT gt has none; see COCO gt)."""
    return _write_text(path, "\n".join(mot_rows(scene, min_visibility)) + "\n")


def coco_ground_truth(
    scene: SyntheticScene, min_visibility: float = DEFAULT_MIN_VISIBILITY
) -> dict:
    """A COCO ground-truth dict: image id = frame index + 1, original category ids."""
    config = scene.config
    images, annotations = [], []
    for index in range(len(scene)):
        images.append(
            {
                "id": index + 1,
                "file_name": f"{index + 1:06d}.jpg",
                "width": config.width,
                "height": config.height,
                "frame_index": index,
            }
        )
        truth = scene.ground_truth(index)
        for box, class_id, identity, seen in zip(
            truth.xyxy,
            truth.class_id,
            truth.tracker_id,
            truth.data["visibility"],
            strict=True,
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": COCO_CATEGORY_IDS[int(class_id)],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0 if seen >= min_visibility else 1,
                    "track_id": int(identity),
                    "visibility": round(float(seen), 4),
                }
            )
    categories = [
        {"id": cid, "name": name, "supercategory": "object"}
        for cid, name in zip(COCO_CATEGORY_IDS, COCO_CLASSES, strict=True)
    ]
    return {
        "info": {"description": config.to_spec()},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco_gt(
    scene: SyntheticScene,
    path: str | Path,
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
) -> Path:
    """The COCO ground-truth json (all 80 categories, boxes of every frame)."""
    return _write_text(path, json.dumps(coco_ground_truth(scene, min_visibility)))


def _write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8, creating the parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_scene(
    scene: SyntheticScene,
    directory: str | Path,
    codec: str = "mp4v",
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
) -> dict[str, Path]:
    """``video.mp4`` (or ``.avi``), ``gt/gt.txt``, ``gt/coco.json``, ``seqinfo.ini``.

    Returns:
        The written paths under the keys ``video``, ``mot_gt``, ``coco_gt``,
        ``seqinfo``.
    """
    if codec not in CODECS:
        raise ValueError(f"codec: expected one of {', '.join(CODECS)}, got {codec!r}")
    directory = Path(directory)
    config = scene.config
    seqinfo = _write_text(
        directory / "seqinfo.ini",
        "[Sequence]\n"
        f"name={directory.name}\nframeRate={config.fps:g}\nseqLength={config.frames}\n"
        f"imWidth={config.width}\nimHeight={config.height}\n"
        f"spec={config.to_spec()}\n",
    )
    return {
        "video": write_video(scene, directory / f"video{CODECS[codec]}", codec),
        "mot_gt": write_mot_gt(scene, directory / "gt" / "gt.txt", min_visibility),
        "coco_gt": write_coco_gt(scene, directory / "gt" / "coco.json", min_visibility),
        "seqinfo": seqinfo,
    }
