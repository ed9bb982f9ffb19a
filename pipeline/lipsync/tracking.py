"""Face tracking through a video: detect now and then, fit landmarks every frame.

Detection is the slow part (a HOG pyramid over the frame); the shape predictor only needs a box.
So the tracker detects on the first frame, every `detect_every` frames, and whenever the tracked
box stops looking like the face it found (a cut, a blank frame, the face leaving), and in between
fits the landmarks in the box carried over from the previous frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.lipsync.landmarks import Box, Face, FaceLandmarker, Grey, plausible

_PATCH = 24  # side of the appearance template (pixels)


def _patch(image: Grey, box: Box) -> npt.NDArray[np.float32] | None:
    """The box's content, small, zero-mean and unit-norm; None when empty or flat."""
    height, width = image.shape[:2]
    left, top = max(box[0], 0), max(box[1], 0)
    right, bottom = min(box[2], width), min(box[3], height)
    if right - left < 4 or bottom - top < 4:
        return None
    small = cv2.resize(
        image[top:bottom, left:right], (_PATCH, _PATCH), interpolation=cv2.INTER_AREA
    )
    values = small.astype(np.float32).ravel()
    values -= values.mean()
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 1e-3 * values.size else None


def _shift(box: Box, dx: float, dy: float) -> Box:
    return (round(box[0] + dx), round(box[1] + dy), round(box[2] + dx), round(box[3] + dy))


class FaceTracker:
    """One video's face, frame after frame. Not thread-safe: one tracker per video."""

    def __init__(
        self, landmarker: FaceLandmarker, detect_every: int = 10, min_similarity: float = 0.6
    ) -> None:
        self._landmarker = landmarker
        self._detect_every = detect_every
        self._min_similarity = min_similarity
        self._face: Face | None = None
        self._template: npt.NDArray[np.float32] | None = None
        self._since_detection = 0

    def track(self, image: Grey) -> Face | None:
        """The single frontal face in this frame, or None (no face, several, turned away)."""
        if self._face is not None and self._since_detection < self._detect_every:
            followed = self._follow(image, self._face)
            if followed is not None:
                self._since_detection += 1
                self._face = followed
                return followed
        return self._detect(image)

    def _detect(self, image: Grey) -> Face | None:
        face = self._landmarker.single_face(image)
        self._face, self._since_detection = face, 0
        self._template = _patch(image, face.box) if face is not None else None
        return face

    def _follow(self, image: Grey, previous: Face) -> Face | None:
        """Landmarks in the previous box, when the box still shows the same face."""
        current = _patch(image, previous.box)
        if current is None or self._template is None:
            return None
        if float(current @ self._template) < self._min_similarity:
            return None
        points = self._landmarker.landmarks(image, previous.box)
        if not plausible(points, previous.box):
            return None
        dx, dy = points.mean(axis=0) - previous.points.mean(axis=0)
        return Face(_shift(previous.box, float(dx), float(dy)), points)
