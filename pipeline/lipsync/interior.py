"""The inside of an opened mouth: a dark, shaded cavity with the upper teeth below the lip.

The eight inner-lip landmarks are too coarse to fill as a polygon (the mouth looks cut out with
scissors), so the outline is a smooth closed spline through them, the cavity is shaded darker
away from the lips, and the teeth are a soft band that follows the upper lip and tapers off
towards the corners.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.lipsync.warp import Coords, fill

_EDGE = np.array([112, 52, 52], dtype=np.float32)  # RGB of the cavity next to the lips
_DEEP = np.array([46, 19, 20], dtype=np.float32)  # RGB of its depth
_TEETH = np.array([184, 162, 122], dtype=np.float32)
_TEETH_SHARE, _TEETH_MAX = 0.24, 0.08  # of the gap, and at most, in eye distances
_TEETH_FROM = 0.06  # gap (eye distances) from which the teeth start to show
_SOFT, _DEPTH = 0.012, 0.07  # blur σ of the outline and of the shading, in eye distances
_STEPS = 6  # spline points per landmark gap


def _catmull_rom(points: Coords, closed: bool) -> Coords:
    """A smooth curve through `points` (uniform Catmull–Rom)."""
    pts = np.asarray(points, dtype=np.float64)
    if closed:
        padded = np.concatenate([pts[-1:], pts, pts[:2]])
    else:
        padded = np.concatenate([2 * pts[:1] - pts[1:2], pts, 2 * pts[-1:] - pts[-2:-1]])
    t = np.linspace(0.0, 1.0, _STEPS, endpoint=False)[:, None]
    curve = []
    for i in range(len(padded) - 3):
        p0, p1, p2, p3 = padded[i : i + 4]
        curve.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    if not closed:
        curve.append(pts[-1:])
    return np.concatenate(curve).astype(np.float32)


def _fill(shape: tuple[int, int], polygon: Coords) -> npt.NDArray[np.uint8]:
    mask = np.zeros(shape, dtype=np.uint8)
    fill(mask, polygon, 255)
    return mask


def _blur(mask: npt.NDArray[np.uint8], sigma: float) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5)), dtype=np.float32) / 255.0


def _teeth_outline(inner: Coords, down: Coords, depth: float) -> Coords:
    """Under the upper lip: an arc from corner to corner, `depth` below the lip's middle."""
    upper = _catmull_rom(inner[[0, 1, 2, 3, 4]], closed=False)
    share = np.linspace(0.0, 1.0, len(upper))[:, None]
    chord = inner[0] + (inner[4] - inner[0]) * share
    sag = float((upper[len(upper) // 2] - chord[len(upper) // 2]) @ down) + depth
    bottom = chord + down * sag * 4 * share * (1 - share)
    return np.concatenate([upper, bottom[::-1]]).astype(np.float32)


def _teeth_depth(inner: Coords, scale: float) -> tuple[float, float]:
    """How far the teeth show below the lip, and how visible they are (none when nearly shut)."""
    gap = float(np.mean(np.linalg.norm(inner[[7, 6, 5]] - inner[[1, 2, 3]], axis=1)))
    visible = float(np.clip((gap / scale - _TEETH_FROM) / _TEETH_FROM, 0.0, 1.0))
    return min(_TEETH_SHARE * gap, _TEETH_MAX * scale), visible


def _teeth(
    cavity: npt.NDArray[np.uint8], inner: Coords, down: Coords, scale: float
) -> npt.NDArray[np.float32]:
    """Coverage of the teeth (0 … 1) over the cavity's box."""
    depth, visible = _teeth_depth(inner, scale)
    if visible == 0.0:
        return np.zeros((*cavity.shape, 1), dtype=np.float32)
    band = cavity & _fill(cavity.shape[:2], _teeth_outline(inner, down, depth))
    return (_blur(band, _SOFT * scale) * visible)[..., None]


def paint_inside(image: npt.NDArray[np.uint8], inner: Coords, down: Coords, scale: float) -> None:
    """Draw the cavity inside the inner-lip points 60–67 (in `image`'s pixels), in place."""
    margin = 2 + 3 * _DEPTH * scale
    low = np.maximum(np.floor(inner.min(axis=0) - margin).astype(int), 0)
    high = np.minimum(np.ceil(inner.max(axis=0) + margin).astype(int), image.shape[1::-1])
    if np.any(high - low < 2):
        return
    left, top = int(low[0]), int(low[1])
    local = inner - np.array([left, top], dtype=np.float32)
    shape = (int(high[1]) - top, int(high[0]) - left)
    cavity = _fill(shape, _catmull_rom(local, closed=True))
    if not cavity.any():
        return
    cover = _blur(cavity, _SOFT * scale)[..., None]
    depth = _blur(cavity, _DEPTH * scale)[..., None]
    colour = _EDGE + (_DEEP - _EDGE) * np.clip(depth * 1.2, 0.0, 1.0)
    colour += _teeth(cavity, local, down, scale) * (_TEETH * (1.0 - 0.2 * depth) - colour)
    region = image[top : int(high[1]), left : int(high[0])].astype(np.float32)
    mixed = region + (colour - region) * cover
    image[top : int(high[1]), left : int(high[0])] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
