"""The 80 COCO classes in their standard contiguous order (0 = person)."""

from __future__ import annotations

import difflib
from collections.abc import Collection

import numpy as np

COCO_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

# COCO's original category ids (1..90 with gaps), as torchvision's detectors and
# COCO results files use them; index = contiguous class id.
COCO_CATEGORY_IDS: tuple[int, ...] = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    27,
    28,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    40,
    41,
    42,
    43,
    44,
    46,
    47,
    48,
    49,
    50,
    51,
    52,
    53,
    54,
    55,
    56,
    57,
    58,
    59,
    60,
    61,
    62,
    63,
    64,
    65,
    67,
    70,
    72,
    73,
    74,
    75,
    76,
    77,
    78,
    79,
    80,
    81,
    82,
    84,
    85,
    86,
    87,
    88,
    89,
    90,
)


def class_ids_from_names(names: str | list[str]) -> list[int]:
    """``"person,car"`` -> ``[0, 2]``; an unknown name raises with the closest."""
    if isinstance(names, str):
        names = [n for n in (part.strip() for part in names.split(",")) if n]
    ids = []
    for name in names:
        if name not in COCO_CLASSES:
            close = difflib.get_close_matches(name, COCO_CLASSES, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"classes: unknown COCO class {name!r}{hint}")
        ids.append(COCO_CLASSES.index(name))
    return ids


def as_class_filter(
    classes: Collection[int | str] | str | None,
) -> frozenset[int] | None:
    """Normalise a class filter: None (keep all), ids, or COCO names.

    Raises:
        ValueError: an unknown name or an id outside 0..79.
    """
    if classes is None:
        return None
    if isinstance(classes, str):
        return frozenset(class_ids_from_names(classes))
    ids = set()
    for c in classes:
        if isinstance(c, str):
            ids.update(class_ids_from_names([c]))
        elif isinstance(c, int | np.integer) and 0 <= c < len(COCO_CLASSES):
            ids.add(int(c))
        else:
            raise ValueError(
                f"classes: expected COCO class names or ids "
                f"0..{len(COCO_CLASSES) - 1}, got {c!r}"
            )
    return frozenset(ids)
