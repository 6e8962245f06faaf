"""The open hand model's skin: a signed distance field of the skeleton's round cones, palm slab and thenar
pad, polygonised with naive surface nets and relaxed onto the surface."""
from __future__ import annotations

import numpy as np

from .skeleton import BLEND, MANO_REST_JOINTS, PALM_CORE, PALM_HALF_CORE, PALM_ROUND, PALM_Y, Primitive, primitives

# ---------------------------------------------------------------------------------------------
# Signed distance field
# ---------------------------------------------------------------------------------------------

def round_cone_sdf(p: np.ndarray, prim: Primitive) -> np.ndarray:
    """Approximate signed distance (m) of points (N, 3) to a round cone (radius interpolated along the axis)."""
    ab = prim.b - prim.a
    t = np.clip(((p - prim.a) @ ab) / (ab @ ab), 0.0, 1.0)
    r = prim.ra + (prim.rb - prim.ra) * t
    return np.linalg.norm(p - (prim.a + t[:, None] * ab), axis=1) - r


def polygon_sdf_2d(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Exact signed distance of 2-D points (N, 2) to a closed polygon (M, 2) (negative inside)."""
    d = np.full(len(q), np.inf)
    inside = np.zeros(len(q), dtype=bool)
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        e, w = b - a, q - a
        t = np.clip((w @ e) / (e @ e), 0.0, 1.0)
        d = np.minimum(d, np.linalg.norm(w - t[:, None] * e, axis=1))
        crosses = (a[1] <= q[:, 1]) != (b[1] <= q[:, 1])
        x_at = a[0] + (q[:, 1] - a[1]) * e[0] / np.where(e[1] == 0, 1e-30, e[1])
        inside ^= crosses & (q[:, 0] < x_at)
    return np.where(inside, -d, d)


def palm_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (m) to the rounded palm slab, thinner toward the knuckles."""
    d2 = polygon_sdf_2d(p[:, [0, 2]], PALM_CORE)
    x0, x1 = MANO_REST_JOINTS[0, 0], MANO_REST_JOINTS[[1, 4, 7, 10], 0].mean()
    s = np.clip((x0 - p[:, 0]) / (x0 - x1), 0.0, 1.0)
    half = PALM_HALF_CORE[0] + (PALM_HALF_CORE[1] - PALM_HALF_CORE[0]) * s
    dy = np.abs(p[:, 1] - PALM_Y) - half
    outside = np.sqrt(np.maximum(d2, 0) ** 2 + np.maximum(dy, 0) ** 2)
    return outside + np.minimum(np.maximum(d2, dy), 0.0) - PALM_ROUND


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two distance fields, blend width ``k`` (m)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def hand_sdf(p: np.ndarray, prims: list[Primitive] | None = None) -> np.ndarray:
    """Signed distance field of the whole hand at points (N, 3) m (negative inside)."""
    prims = primitives() if prims is None else prims
    d = palm_sdf(p)
    groups = {}
    for prim in prims:
        dp = round_cone_sdf(p, prim)
        groups[prim.group] = dp if prim.group not in groups else np.minimum(groups[prim.group], dp)
    d = smooth_min(d, groups["thenar"], BLEND[0])
    d = smooth_min(d, groups["thumb"], BLEND[1])
    return smooth_min(d, groups["finger"], BLEND[2])


# ---------------------------------------------------------------------------------------------
# Polygonisation: naive surface nets on a regular grid
# ---------------------------------------------------------------------------------------------

def surface_nets(sdf, lo: np.ndarray, hi: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the zero level set of ``sdf`` inside the box [lo, hi].

    One vertex per grid cell crossed by the surface (mean of its edge crossings), one quad per
    grid edge crossed (the 4 cells around it), wound so that normals point outward (toward sdf > 0).

    Returns
    -------
    vertices : (V, 3) m;  faces : (F, 3) int.
    """
    axes = [np.arange(lo[i], hi[i] + step / 2, step) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    shape = grid.shape[:3]
    f = sdf(grid.reshape(-1, 3)).reshape(shape)
    if (f[0] < 0).any() or (f[-1] < 0).any() or (f[:, 0] < 0).any() or (f[:, -1] < 0).any() \
            or (f[:, :, 0] < 0).any() or (f[:, :, -1] < 0).any():
        raise ValueError("the shape touches the grid boundary; enlarge GRID_MIN/GRID_MAX")
    cell_sum = np.zeros(tuple(n - 1 for n in shape) + (3,))
    cell_cnt = np.zeros(tuple(n - 1 for n in shape))
    crossings = []
    for ax in range(3):
        sl0 = [slice(None)] * 3
        sl1 = [slice(None)] * 3
        sl0[ax], sl1[ax] = slice(0, -1), slice(1, None)
        f0, f1 = f[tuple(sl0)], f[tuple(sl1)]
        idx = np.argwhere((f0 < 0) != (f1 < 0))  # edge start (i, j, k) along ax
        t = f0[tuple(idx.T)] / (f0[tuple(idx.T)] - f1[tuple(idx.T)])
        pts = grid[tuple(idx.T)].copy()
        pts[:, ax] += t * step
        others = [a for a in range(3) if a != ax]
        for da in (0, 1):
            for db in (0, 1):
                c = idx.copy()
                c[:, others[0]] -= da
                c[:, others[1]] -= db
                np.add.at(cell_sum, tuple(c.T), pts)
                np.add.at(cell_cnt, tuple(c.T), 1)
        crossings.append((ax, idx, f0[tuple(idx.T)] < 0))
    cells = np.argwhere(cell_cnt > 0)
    index = -np.ones(cell_cnt.shape, dtype=np.int64)
    index[tuple(cells.T)] = np.arange(len(cells))
    verts = cell_sum[tuple(cells.T)] / cell_cnt[tuple(cells.T)][:, None]
    quads = []
    for ax, idx, inside_low in crossings:
        u, v = [(1, 2), (2, 0), (0, 1)][ax]  # (u, v, ax) is a right-handed cycle
        ring = []
        for du, dv in ((1, 1), (0, 1), (0, 0), (1, 0)):  # counter-clockwise in (u, v): normal +ax
            c = idx.copy()
            c[:, u] -= du
            c[:, v] -= dv
            ring.append(index[tuple(c.T)])
        q = np.stack(ring, axis=1)
        q[~inside_low] = q[~inside_low][:, ::-1]
        quads.append(q)
    quads = np.concatenate(quads)
    # Split each quad along its shorter diagonal.
    d02 = np.linalg.norm(verts[quads[:, 0]] - verts[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(verts[quads[:, 1]] - verts[quads[:, 3]], axis=1)
    a = np.where((d02 <= d13)[:, None], quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    b = np.where((d02 <= d13)[:, None], quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return verts, np.concatenate([a, b])


_TETRA = np.array([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]])


def sdf_value_and_gradient(sdf, p: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Value (N,) and gradient (N, 3) of ``sdf`` at points (N, 3) from 4 tetrahedral samples."""
    samples = [sdf(p + eps * k) for k in _TETRA]
    value = sum(samples) / 4.0
    grad = sum(s[:, None] * k for s, k in zip(samples, _TETRA)) / (4.0 * eps)
    return value, grad


def relax_onto_surface(verts: np.ndarray, faces: np.ndarray, sdf, iterations: int = 10,
                       pinned: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Tangential Laplacian smoothing, each step followed by projection onto the zero level set.

    ``pinned`` maps vertex ids to fixed positions on the surface (the fingertip points).
    """
    pinned = pinned or {}
    pin_ids = np.array(sorted(pinned), dtype=np.int64)
    pin_pos = np.array([pinned[i] for i in pin_ids]).reshape(-1, 3)
    V = len(verts)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    deg = np.bincount(edges[:, 0], minlength=V).astype(float)
    v = verts.copy()
    for it in range(iterations + 1):
        for _ in range(2):  # Newton steps onto the surface
            f, g = sdf_value_and_gradient(sdf, v)
            v = v - (f / np.maximum((g * g).sum(1), 1e-12))[:, None] * g
            v[pin_ids] = pin_pos
        if it == iterations:
            break
        mean = np.zeros_like(v)
        np.add.at(mean, edges[:, 0], v[edges[:, 1]])
        mean /= deg[:, None]
        n = g / np.linalg.norm(g, axis=1, keepdims=True)
        delta = mean - v
        delta -= (delta * n).sum(1, keepdims=True) * n
        v = v + 0.5 * delta
    return v
