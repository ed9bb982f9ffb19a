"""Drawing a mouth that says something else: the landmark renderer.

The lower face of every output frame is replaced, not retouched: a closed-mouth picture of the
speaker (the reference) is aligned to the frame's face, its lips and jaw are warped to the shape
the drive asks for (lower lip and chin down, upper lip a little up, corners in), the opened lips
are filled with a dark mouth interior and a hint of upper teeth, and the result is blended in
with a feathered mask wide enough to hide the original jaw wherever it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.lipsync.base import Frame
from pipeline.lipsync.interior import paint_inside
from pipeline.lipsync.landmarks import INNER_LOWER, INNER_UPPER, Face, Points, eye_distance
from pipeline.lipsync.landmarks import lip_opening as lip_opening_of
from pipeline.lipsync.warp import (
    Affine,
    Coords,
    Roi,
    fill,
    similarity,
    transform,
    triangulate,
    warp,
)

# Mesh: landmarks that move or hold the skin, then a fixed ring outside the jaw.
_JAW = tuple(range(2, 15))
_NOSE = (29, 30, 31, 32, 33, 34, 35)
_LIPS = tuple(range(48, 68))
_CONTROL = (*_JAW, *_NOSE, *_LIPS)
_SLOT = {landmark: slot for slot, landmark in enumerate(_CONTROL)}
_RING_FROM = tuple(range(1, 16))  # jaw points pushed outwards to make the ring
_RING_SCALE = 1.55
_MASK_SCALE = 1.18  # the replaced area: the jaw line pushed outwards by this much
_CENTRE = 33  # nose bottom: centre for the ring and the mask
_STABLE = tuple(range(27, 48))  # nose and eyes: they do not move when speaking

# How far each point moves per unit of opening, along the face's "down" axis.
_LOWER = {65: 0.85, 66: 1.0, 67: 0.85, 55: 0.55, 56: 0.85, 57: 1.0, 58: 0.85, 59: 0.55}
_UPPER = {61: 0.85, 62: 1.0, 63: 0.85, 49: 0.55, 50: 0.85, 51: 1.0, 52: 0.85, 53: 0.55}
_JAW_DROP = {8: 1.0, 7: 0.9, 9: 0.9, 6: 0.7, 10: 0.7, 5: 0.45, 11: 0.45, 4: 0.2, 12: 0.2}
_CORNERS = (48, 54, 60, 64)
_LOWER_SHARE, _UPPER_SHARE, _CORNER_DROP, _CORNER_IN = 0.8, 0.2, 0.3, 0.08

MAX_OPENING = 0.45  # inner-lip gap at drive 1, in eye distances (a wide "a")
_FEATHER = 0.09  # σ of the mask's blur, in eye distances

Alpha = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MouthReference:
    """A closed-mouth picture of the speaker: a frame and its face's landmarks."""

    image: Frame
    points: Points

    @classmethod
    def pick(cls, frames: Sequence[Frame], faces: Sequence[Face | None]) -> MouthReference | None:
        """The frame whose lips are closest together (None when no frame has a face)."""
        found = [(lip_opening_of(f.points), i, f) for i, f in enumerate(faces) if f is not None]
        if not found:
            return None
        _, index, face = min(found, key=lambda item: item[0])
        return cls(np.ascontiguousarray(frames[index]), face.points)


def _ring(points: Points) -> Coords:
    centre = points[_CENTRE]
    return np.asarray(centre + _RING_SCALE * (points[list(_RING_FROM)] - centre), np.float32)


def _mesh(points: Points) -> Coords:
    return np.concatenate([points[list(_CONTROL)], _ring(points)]).astype(np.float32)


def _outline(jaw: Coords, nose: Coords) -> Coords:
    """The replaced area: the jaw line pushed outwards from the nose bottom, closed under the
    nose (`nose`: points 35, 33, 31)."""
    centre = nose[1]
    return np.concatenate([centre + _MASK_SCALE * (jaw - centre), nose]).astype(np.float32)


def _mask_outline(points: Points) -> Coords:
    return _outline(points[list(_JAW)], points[[35, 33, 31]])


def _target_outline(target: Coords) -> Coords:
    """`_mask_outline` of a mesh (its jaw and nose slots)."""
    return _outline(target[[_SLOT[j] for j in _JAW]], target[[_SLOT[35], _SLOT[33], _SLOT[31]]])


def _axes(affine: Affine) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The face's own right and down directions in the frame (unit vectors)."""
    right = affine[:, 0] / max(float(np.linalg.norm(affine[:, 0])), 1e-9)
    down = np.array([-right[1], right[0]])
    return right.astype(np.float32), down.astype(np.float32)


class MouthRenderer:
    """Renders one speaker's mouth at any openness on frames of the same video."""

    def __init__(self, reference: MouthReference) -> None:
        self._reference = reference
        self._source = _mesh(reference.points)
        self._triangles = triangulate(self._source)
        columns = reference.points[list(INNER_LOWER), 1] - reference.points[list(INNER_UPPER), 1]
        self._gap = np.maximum(columns, 0.0)  # the reference's own opening, per column

    def render(self, frame: Frame, face: Face, openness: float) -> Frame:
        """A copy of `frame` with the face's lower part redrawn at `openness` (0 … 1)."""
        affine = similarity(self._reference.points[list(_STABLE)], face.points[list(_STABLE)])
        target = self._target(affine, face, openness)
        scale = eye_distance(face.points)
        roi = self._roi(frame, face.points, target, scale)
        if roi is None:
            return frame
        patch = warp(self._reference.image, self._source, target, self._triangles, roi)
        inner = target[[_SLOT[i] for i in range(60, 68)]] - np.array(roi[:2], dtype=np.float32)
        paint_inside(patch, inner, _axes(affine)[1], scale)
        return self._blend(frame, patch, self._alpha(face.points, target, roi, scale), roi)

    def _target(self, affine: Affine, face: Face, openness: float) -> Coords:
        """The mesh in this frame: the reference aligned, then its mouth closed and opened."""
        target = transform(affine, self._source)
        _, down = _axes(affine)
        gap = self._gap * float(np.linalg.norm(affine[:, 0]))
        amount = float(np.clip(openness, 0.0, 1.0)) * MAX_OPENING * eye_distance(face.points)
        for landmark, distance in _moves(gap, amount).items():
            target[_SLOT[landmark]] += distance * down
        _corners_in(target, _CORNER_IN * amount)
        return target

    def _roi(self, frame: Frame, points: Points, target: Coords, scale: float) -> Roi | None:
        outline = np.concatenate([_mask_outline(points), _target_outline(target)])
        margin = 3 * _FEATHER * scale
        low = np.floor(outline.min(axis=0) - margin).astype(int)
        high = np.ceil(outline.max(axis=0) + margin).astype(int)
        height, width = frame.shape[:2]
        left, top = max(int(low[0]), 0), max(int(low[1]), 0)
        right, bottom = min(int(high[0]), width), min(int(high[1]), height)
        return (left, top, right, bottom) if right - left > 2 and bottom - top > 2 else None

    @staticmethod
    def _alpha(points: Points, target: Coords, roi: Roi, scale: float) -> Alpha:
        """1 over the old and the new jaw, fading to 0 outside them."""
        height, width = roi[3] - roi[1], roi[2] - roi[0]
        mask = np.zeros((height, width), dtype=np.uint8)
        offset = np.array(roi[:2], dtype=np.float32)
        for outline in (_mask_outline(points), _target_outline(target)):
            fill(mask, outline - offset, 255)
        sigma = _FEATHER * scale
        blurred = cv2.GaussianBlur(mask, (0, 0), sigma)
        return np.asarray(blurred, dtype=np.float32) / 255.0

    @staticmethod
    def _blend(frame: Frame, patch: Frame, alpha: Alpha, roi: Roi) -> Frame:
        left, top, right, bottom = roi
        out = frame.copy()
        region = out[top:bottom, left:right].astype(np.float32)
        weight = alpha[..., None]
        mixed = patch.astype(np.float32) * weight + region * (1.0 - weight)
        out[top:bottom, left:right] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        return out


def _moves(gap: npt.NDArray[np.float32], amount: float) -> dict[int, float]:
    """How far (pixels, along "down") each landmark moves: first closing the reference's own
    gap (`gap`, per inner-lip column), then opening by `amount`."""
    shut = float(gap.mean())
    moves = {point: w * (_LOWER_SHARE * amount - shut / 2) for point, w in _LOWER.items()}
    moves |= {point: w * (shut / 2 - _UPPER_SHARE * amount) for point, w in _UPPER.items()}
    for column, (upper, lower) in enumerate(zip(INNER_UPPER, INNER_LOWER, strict=True)):
        moves[upper] = _UPPER[upper] * (gap[column] / 2 - _UPPER_SHARE * amount)
        moves[lower] = _LOWER[lower] * (_LOWER_SHARE * amount - gap[column] / 2)
    moves |= {point: w * (_LOWER_SHARE * amount - shut / 2) for point, w in _JAW_DROP.items()}
    moves |= {point: _CORNER_DROP * _LOWER_SHARE * amount for point in _CORNERS}
    return moves


def _corners_in(target: Coords, distance: float) -> None:
    """An open mouth is narrower: its corners move towards the middle."""
    middle = (target[_SLOT[48]] + target[_SLOT[54]]) / 2
    for landmark in _CORNERS:
        inward = middle - target[_SLOT[landmark]]
        target[_SLOT[landmark]] += distance * inward / max(float(np.linalg.norm(inward)), 1e-6)
