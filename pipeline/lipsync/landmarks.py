"""Face landmarks: dlib's HOG face detector and its 68-point shape predictor, both shipped in
wheels (`dlib-bin`, `face-recognition-models`), so nothing is downloaded at run time.

Point numbering is iBUG 300-W's: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, outer lips
48–59, inner lips 60–67.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from pipeline.errors import ModelUnavailableError
from pipeline.lipsync.base import Frame

Points = npt.NDArray[np.float32]  # 68 × 2, (x, y) in pixels
Grey = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]  # left, top, right, bottom

LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
INNER_UPPER = (61, 62, 63)
INNER_LOWER = (67, 66, 65)  # the partners of INNER_UPPER, column by column


def shape_predictor_path() -> Path:
    """The 68-point model inside face-recognition-models, found without importing the package
    (its __init__ imports pkg_resources, which newer setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("lip-sync needs face-recognition-models (the 68-point model)")
    path = Path(next(iter(spec.submodule_search_locations)))
    return path / "models" / "shape_predictor_68_face_landmarks.dat"


@cache
def _predictor(path: Path) -> dlib.shape_predictor:
    # Loading parses ~100 MB; predictors are read-only afterwards and shared by every thread.
    if not path.exists():
        raise ModelUnavailableError(f"shape predictor not found: {path}")
    return dlib.shape_predictor(str(path))


@cache
def _detector() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


# dlib's object detector keeps scratch buffers: one caller at a time. The shape predictor is
# documented as safe to share between threads.
_DETECTING = threading.Lock()


def grey(frame: Frame) -> Grey:
    """The luma plane dlib works on (one channel is about 3× faster than RGB)."""
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY), np.uint8)


def eye_distance(points: Points) -> float:
    """Distance between the eye centres: the face's scale."""
    left = points[LEFT_EYE].mean(axis=0)
    right = points[RIGHT_EYE].mean(axis=0)
    return float(np.linalg.norm(right - left))


def lip_opening(points: Points) -> float:
    """Inner-lip gap (mean of the three upper/lower pairs) over the eye distance."""
    gap = points[list(INNER_LOWER), 1] - points[list(INNER_UPPER), 1]
    return float(np.mean(gap)) / max(eye_distance(points), 1e-6)


def plausible(points: Points, box: Box) -> bool:
    """A frontal face: eyes level-ish and apart, nose between them, mouth below the nose,
    all inside (a margin around) the box. False for a face turned away or a non-face."""
    left, top, right, bottom = box
    width = max(right - left, 1)
    eyes = eye_distance(points)
    if not 0.25 * width < eyes < 0.75 * width:
        return False
    left_eye, right_eye = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    nose, mouth = points[30], points[48:60].mean(axis=0)
    # Yaw: the nose tip sits about half-way between the eyes on a frontal face.
    share = (nose[0] - left_eye[0]) / max(right_eye[0] - left_eye[0], 1e-6)
    if not 0.2 < share < 0.8:
        return False
    eye_line = (left_eye[1] + right_eye[1]) / 2
    if not eye_line < nose[1] < mouth[1]:
        return False
    margin = 0.5 * width
    inside_x = (points[:, 0] > left - margin) & (points[:, 0] < right + margin)
    inside_y = (points[:, 1] > top - margin) & (points[:, 1] < bottom + margin)
    return bool(np.all(inside_x & inside_y))


@dataclass(frozen=True)
class Face:
    """One face in a frame: its box and 68 landmarks, in the frame's pixels."""

    box: Box
    points: Points


class FaceLandmarker:
    """Finds frontal faces on a downscaled copy and fits 68 landmarks at full resolution.

    Thread-safe: the models are shared read-only; this object holds no per-video state.
    """

    def __init__(self, detect_size: int = 480, model: Path | None = None) -> None:
        self._detect_size = detect_size
        self._predictor = _predictor(model or shape_predictor_path())
        self._detector = _detector()

    def detect(self, image: Grey) -> list[Box]:
        """Boxes of the frontal faces, found on a copy whose longer side is `detect_size`."""
        scale = min(1.0, self._detect_size / max(image.shape[:2]))
        small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale)
        with _DETECTING:
            found = self._detector(small, 0)
        return [
            (
                round(r.left() / scale),
                round(r.top() / scale),
                round(r.right() / scale),
                round(r.bottom() / scale),
            )
            for r in found
        ]

    def landmarks(self, image: Grey, box: Box) -> Points:
        """The 68 points of the face in `box`."""
        shape = self._predictor(image, dlib.rectangle(*box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def single_face(self, image: Grey) -> Face | None:
        """The face when exactly one plausible frontal face is in the image, else None."""
        boxes = self.detect(image)
        if len(boxes) != 1:
            return None
        points = self.landmarks(image, boxes[0])
        return Face(boxes[0], points) if plausible(points, boxes[0]) else None
