"""Piecewise-affine warping over a triangle mesh, and the similarity that aligns two faces.

The warp is done as one `cv2.remap`: every destination pixel is labelled with the triangle it
falls in, and that triangle's affine map gives its source position. That is several times faster
than warping each triangle on its own and pasting it.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Coords = npt.NDArray[np.float32]  # n × 2
Triangles = npt.NDArray[np.int32]  # m × 3 indices into the points
Affine = npt.NDArray[np.float64]  # 2 × 3
Image = npt.NDArray[np.uint8]
Roi = tuple[int, int, int, int]  # left, top, right, bottom

_SHIFT = 4  # fixed-point bits for sub-pixel polygon filling
_MIN_ALTITUDE = 1.0  # pixels: thinner target triangles are slivers


def triangulate(points: Coords) -> Triangles:
    """Delaunay triangles over `points`, as indices."""
    low = points.min(axis=0) - 10
    high = points.max(axis=0) + 10
    subdiv = cv2.Subdiv2D((int(low[0]), int(low[1]), int(high[0] - low[0]), int(high[1] - low[1])))
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    triangles = []
    for corners in np.asarray(subdiv.getTriangleList(), dtype=np.float32).reshape(-1, 3, 2):
        distances = np.linalg.norm(points[None, :, :] - corners[:, None, :], axis=2)
        nearest = distances.argmin(axis=1)
        if distances[np.arange(3), nearest].max() < 0.5 and len(set(nearest.tolist())) == 3:
            triangles.append(nearest)
    return np.array(triangles, dtype=np.int32).reshape(-1, 3)


def similarity(source: Coords, target: Coords) -> Affine:
    """The rotation, uniform scale and shift taking `source` closest to `target` (Umeyama)."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = (source - src_mean).astype(np.float64), (target - dst_mean).astype(np.float64)
    u, sigma, vt = np.linalg.svd(dst.T @ src / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / max(float(src.var(axis=0).sum()), 1e-12)
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def transform(affine: Affine, points: Coords) -> Coords:
    return (points @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def _inverse_maps(source: Coords, target: Coords, triangles: Triangles) -> npt.NDArray[np.float64]:
    """Per triangle, the 2 × 3 affine from target to source pixels (m × 2 × 3)."""
    corners = target[triangles].astype(np.float64)  # m × 3 × 2
    design = np.concatenate([corners, np.ones((len(triangles), 3, 1))], axis=2)  # m × 3 × 3
    wanted = source[triangles].astype(np.float64)  # m × 3 × 2
    # Degenerate (collapsed) triangles cover no pixel: any finite answer will do.
    design += np.eye(3) * 1e-9
    return np.asarray(np.linalg.solve(design, wanted).transpose(0, 2, 1))


def _labels(corners: Coords, triangles: Triangles, roi: Roi) -> npt.NDArray[np.uint8]:
    """Per pixel of the roi, 1 + the index of the triangle it lies in (0: none)."""
    if len(triangles) > 254:
        raise ValueError("at most 254 triangles")
    labels = np.zeros((roi[3] - roi[1], roi[2] - roi[0]), dtype=np.uint8)
    fixed = np.rint(corners * (1 << _SHIFT)).astype(np.int32)
    for index in np.flatnonzero(_altitudes(corners[triangles]) >= _MIN_ALTITUDE):
        cv2.fillConvexPoly(labels, fixed[triangles[index]], int(index) + 1, cv2.LINE_8, _SHIFT)
    # Slivers (their affine map is ill-conditioned) and pixels on an edge shared by two
    # triangles are left out above; they take a neighbour's triangle.
    gaps = labels == 0
    labels[gaps] = cv2.dilate(labels, np.ones((3, 3), np.uint8), iterations=2)[gaps]
    return labels


def _altitudes(corners: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Each triangle's smallest height (pixels): twice its area over its longest side."""
    a, b, c = (corners[:, i].astype(np.float64) for i in range(3))
    area2 = np.abs(
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    )
    longest = np.max(
        [
            np.linalg.norm(b - a, axis=1),
            np.linalg.norm(c - b, axis=1),
            np.linalg.norm(a - c, axis=1),
        ],
        axis=0,
    )
    return np.asarray(area2 / np.maximum(longest, 1e-9))


def warp(
    image: Image,
    source: Coords,
    target: Coords,
    triangles: Triangles,
    roi: Roi,
) -> Image:
    """The part `roi` (left, top, right, bottom) of `image` warped so that each source triangle
    lands on its target triangle. Pixels outside every target triangle are undefined: mask them."""
    left, top, right, bottom = roi
    labels = _labels(target - np.array([left, top], dtype=np.float32), triangles, roi)
    maps = np.concatenate([np.zeros((1, 2, 3)), _inverse_maps(source, target, triangles)])
    maps[0, :, 2] = -1.0  # unlabelled pixels read outside the image
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
    chosen = maps[labels].astype(np.float32)  # h × w × 2 × 3
    map_x = chosen[..., 0, 0] * xs + chosen[..., 0, 1] * ys + chosen[..., 0, 2]
    map_y = chosen[..., 1, 0] * xs + chosen[..., 1, 1] * ys + chosen[..., 1, 2]
    return np.asarray(
        cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
        dtype=np.uint8,
    )


def fill(image: Image, polygon: Coords, colour: int | tuple[int, int, int]) -> None:
    """Anti-aliased, sub-pixel polygon fill, in place."""
    corners = np.rint(polygon * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(image, [corners], colour, cv2.LINE_AA, _SHIFT)
