"""Which keypoints of a rendered clip the camera cannot see: behind a held cylinder (a bottle) or
inside the outline of a nearer hand; and the cylinder's mesh for the renderer.

Camera coordinates (OpenCV: x right, y down, z forward, m), the camera at the origin.
"""
from __future__ import annotations

import numpy as np


def cylinder_mesh(centre: np.ndarray, axis: np.ndarray, radius: float, length: float,
                  n_around: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A capped cylinder at each of N poses: vertices (N, 2 n + 2, 3) m, triangles (F, 3).

    centre (N, 3) m, axis (N, 3) unit vectors; ``radius``, ``length`` m.
    """
    axis = np.asarray(axis, np.float64)
    ref = np.where(np.abs(axis[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    u = np.cross(axis, ref)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    v = np.cross(axis, u)
    ang = np.linspace(0.0, 2.0 * np.pi, n_around, endpoint=False)
    ring = radius * (np.cos(ang)[None, :, None] * u[:, None] + np.sin(ang)[None, :, None] * v[:, None])
    half = 0.5 * length * axis[:, None]
    c = np.asarray(centre, np.float64)[:, None]
    verts = np.concatenate([c + ring - half, c + ring + half, c - half, c + half], axis=1)
    faces = []
    n = n_around
    for k in range(n):
        a0, a1 = k, (k + 1) % n
        faces += [(a0, a1, n + a0), (a1, n + a1, n + a0), (2 * n, a1, a0), (2 * n + 1, n + a0, n + a1)]
    return verts, np.asarray(faces, np.int32)


def hidden_by_cylinder(points: np.ndarray, centre: np.ndarray, axis: np.ndarray, radius: float,
                       length: float, margin: float = 0.004) -> np.ndarray:
    """(N, K) bool: points (N, K, 3) m whose line of sight from the camera (at the origin) enters the
    cylinder (centre (N, 3), unit axis (N, 3), ``radius``, ``length`` m; caps ignored) more than
    ``margin`` m before reaching them."""
    p = np.asarray(points, np.float64)
    a = np.asarray(axis, np.float64)[:, None]
    c = np.asarray(centre, np.float64)[:, None]
    p_perp = p - (p * a).sum(-1, keepdims=True) * a
    c_perp = c - (c * a).sum(-1, keepdims=True) * a
    A = (p_perp ** 2).sum(-1)
    B = -2.0 * (p_perp * c_perp).sum(-1)
    C = (c_perp ** 2).sum(-1) - radius ** 2
    disc = B ** 2 - 4 * A * C
    s1 = (-B - np.sqrt(np.clip(disc, 0.0, None))) / np.maximum(2 * A, 1e-12)     # entry along the ray, 0..1 = point
    along = ((s1[..., None] * p - c) * a).sum(-1)
    before = s1 < 1.0 - margin / np.maximum(np.linalg.norm(p, axis=-1), 1e-9)
    return (disc > 0) & (s1 > 0) & before & (np.abs(along) <= 0.5 * length)


def hidden_by_nearer_hand(j2d: np.ndarray, j3d: np.ndarray, margin: float = 0.08) -> np.ndarray:
    """(H, T, 21) bool: keypoints inside the 2-D outline (convex hull of the keypoints, grown by
    ``margin`` about its centre) of another hand whose keypoints are on average nearer the camera
    than they are. j2d (H, T, 21, 2) px, j3d (H, T, 21, 3) m (an approximation of the mesh's outline)."""
    import cv2

    H, T = j2d.shape[:2]
    out = np.zeros(j2d.shape[:3], bool)
    for t in range(T):
        for o in range(H):
            pts = j2d[o, t].astype(np.float64)
            centre = pts.mean(0)
            hull = cv2.convexHull(pts.astype(np.float32))[:, 0]
            grown = centre + (hull - centre) * (1.0 + margin)
            depth_o = float(j3d[o, t, :, 2].mean())
            for h in range(H):
                if h == o:
                    continue
                for k in range(j2d.shape[2]):
                    if j3d[h, t, k, 2] > depth_o and cv2.pointPolygonTest(
                            grown.astype(np.float32), tuple(map(float, j2d[h, t, k])), False) >= 0:
                        out[h, t, k] = True
    return out
