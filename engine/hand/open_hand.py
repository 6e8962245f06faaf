"""Generator of the open hand model: this project's own MANO-format right and left hand.

Run ``python -m dahyf.hand.open_hand`` to rebuild ``engine/assets/open_hand_{right,left}.npz``
(deterministic: same numbers every run). Format, sources and design: ``engine/assets/OPEN_HAND.md``.

The model keeps MANO's conventions so that a pose θ from a MANO-based method means the same here:

* the canonical frame of MANO_RIGHT's flat hand (θ = 0, ``flat_hand_mean=True``): metres, wrist
  joint near (0.096, 0.006, 0.006), fingers pointing to −x, palm facing −y, thumb on the +z side;
* the 16-joint tree of ``tables.PARENTS`` with rest joints at MANO's published mean rest joints
  (``MANO_REST_JOINTS``), each joint rotating about its own rest position (axis-angle, LBS);
* positive rotation about +z flexes the four fingers toward the palm (MANO's relaxed mean pose
  has positive z on all twelve finger joints).

What is our own: the mesh (an implicit surface of round cones around that skeleton, a rounded
palm slab and a thenar pad, polygonised with surface nets), the skin weights, the joint regressor
and the 10-D anthropometric shape space. Only numpy and scipy are needed, at generator time only.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..assets import ASSETS
from ..fileio import atomic_write
from .mirror import mirror_model_arrays
from .tables import FINGER_JOINTS, FINGERS, JOINT_NAMES, NUM_JOINTS, PARENTS


# ---------------------------------------------------------------------------------------------
# Canonical skeleton (metres, MANO_RIGHT frame)
# ---------------------------------------------------------------------------------------------

#: MANO_RIGHT mean rest joints ``J_regressor @ v_template`` (flat hand, θ = 0), JOINT_NAMES order,
#: rounded to 0.1 mm. Published in MANO-based code, e.g. oarriaga/paz
#: examples/minimal_hand/joint_config.py (``MANO_REF_JOINTS``, MANO_LEFT: same numbers with x negated)
#: and smplx-based IK code that hard-codes MANO_RIGHT's ``default`` joints; see OPEN_HAND.md.
MANO_REST_JOINTS = np.array([
    [0.0957, 0.0064, 0.0062],     # wrist
    [0.0076, 0.0012, 0.0269],     # index1  (MCP)
    [-0.0251, 0.0052, 0.0291],    # index2  (PIP)
    [-0.0473, 0.0039, 0.0290],    # index3  (DIP)
    [0.0010, 0.0049, 0.0028],     # middle1
    [-0.0302, 0.0068, -0.0028],   # middle2
    [-0.0531, 0.0055, -0.0067],   # middle3
    [0.0269, -0.0036, -0.0370],   # pinky1
    [0.0099, -0.0035, -0.0495],   # pinky2
    [-0.0060, -0.0042, -0.0599],  # pinky3
    [0.0139, 0.0024, -0.0205],    # ring1
    [-0.0144, 0.0045, -0.0256],   # ring2
    [-0.0379, 0.0028, -0.0332],   # ring3
    [0.0716, -0.0091, 0.0320],    # thumb1  (CMC)
    [0.0519, -0.0082, 0.0557],    # thumb2  (MCP)
    [0.0297, -0.0137, 0.0702],    # thumb3  (IP)
])

#: MANO_RIGHT fingertip vertices (744, 320/333, 443/444, 555, 672) of the mean flat hand, FINGERS order
#: (thumb, index, middle, ring, pinky), from the same paz table (x negated), rounded to 0.1 mm.
MANO_TIP_POINTS = np.array([
    [0.0037, -0.0164, 0.0941],    # thumb
    [-0.0724, 0.0030, 0.0277],    # index
    [-0.0790, 0.0061, -0.0120],   # middle
    [-0.0625, 0.0024, -0.0407],   # ring
    [-0.0237, -0.0055, -0.0698],  # pinky
])

#: Unit palm normal of the canonical right hand (points out of the palm): −y.
PALM_NORMAL = np.array([0.0, -1.0, 0.0])
#: Rotation axis that flexes the four fingers (MANO: positive z).
FINGER_FLEX_AXIS = np.array([0.0, 0.0, 1.0])
#: Axis of the thumb IP joint in MANO's relaxed mean pose, (0.5356, −0.0460, 0.2774) normalised:
#: a positive rotation about it flexes the thumb toward the palm.
THUMB_FLEX_AXIS = np.array([0.5356, -0.0460, 0.2774]) / np.linalg.norm([0.5356, -0.0460, 0.2774])

#: Skin radius (m) at [base joint, middle joint, distal joint, tip] of each finger, FINGERS order.
#: Adult proximal-phalanx breadths ≈ 17-21 mm, distal ≈ 14-17 mm; fingers are modelled round.
FINGER_RADII = {
    "thumb": (0.0120, 0.0105, 0.0096, 0.0088),
    "index": (0.0096, 0.0089, 0.0081, 0.0074),
    "middle": (0.0099, 0.0092, 0.0083, 0.0075),
    "ring": (0.0093, 0.0086, 0.0078, 0.0071),
    "pinky": (0.0085, 0.0077, 0.0070, 0.0064),
}

#: Palm slab: core polygon in the (x, z) plane (inset by PALM_ROUND), centre height and half thickness.
PALM_CORE = np.array([
    [0.106, 0.014], [0.060, 0.026], [0.012, 0.026], [0.002, 0.003],
    [0.014, -0.020], [0.027, -0.035], [0.070, -0.031], [0.106, -0.019],
])
PALM_Y = 0.0015
PALM_ROUND = 0.0085
PALM_HALF_CORE = (0.0040, 0.0020)  # at the wrist, at the knuckles (added to PALM_ROUND)
#: Thenar pad (ball of the thumb): round cone from near the wrist to the thumb's CMC joint.
THENAR = (np.array([0.097, -0.0045, 0.010]), np.array([0.066, -0.0095, 0.036]), 0.0125, 0.0110)

#: Smooth-union widths (m): palm+thenar, +thumb, +fingers.
BLEND = (0.012, 0.008, 0.0075)
#: Surface-nets grid spacing (m) and bounding box. The origin is chosen so that no grid plane grazes
#: the skin tangentially in a narrow finger gap (that would give a non-manifold edge; checked below).
GRID_STEP = 0.0040
GRID_MIN = np.array([-0.0929, -0.0329, -0.0829])
GRID_MAX = np.array([0.1271, 0.0321, 0.1141])


@dataclass(frozen=True)
class Primitive:
    """A round cone from ``a`` to ``b`` with radii ``ra``, ``rb`` (m), owned by joint ``joint``."""

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float
    joint: int
    group: str  # 'thenar', 'thumb', 'finger'


def finger_chain(finger: str) -> tuple[list[int], np.ndarray]:
    """MANO joint ids of a finger and its 4 chain points (3 joints + tip) (4, 3) m."""
    ids = list(FINGER_JOINTS[finger])
    pts = np.vstack([MANO_REST_JOINTS[ids], MANO_TIP_POINTS[FINGERS.index(finger)]])
    return ids, pts


def primitives() -> list[Primitive]:
    """The round cones of thumb, fingers and thenar pad (the palm slab is separate)."""
    prims = [Primitive(THENAR[0], THENAR[1], THENAR[2], THENAR[3], JOINT_NAMES.index("thumb1"), "thenar")]
    for finger in FINGERS:
        ids, pts = finger_chain(finger)
        radii = FINGER_RADII[finger]
        for s in range(3):
            a, b = pts[s], pts[s + 1]
            rb = radii[s + 1]
            if s == 2:  # the distal cone ends one radius short of the tip so the skin reaches the tip
                d = (b - a) / np.linalg.norm(b - a)
                b = b - d * rb
            prims.append(Primitive(a, b, radii[s], rb, ids[s], "thumb" if finger == "thumb" else "finger"))
    return prims


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


# ---------------------------------------------------------------------------------------------
# Skin weights, joint regressor, fingertips
# ---------------------------------------------------------------------------------------------

def vertex_adjacency(faces: np.ndarray, V: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed edge list (E, 2) of the mesh graph and vertex degrees (V,)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.concatenate([e, e[:, ::-1]]), axis=0)
    return e, np.bincount(e[:, 0], minlength=V).astype(float)


def skin_weights(verts: np.ndarray, faces: np.ndarray, prims: list[Primitive], tau: float = 0.0015,
                 smooth_iters: int = 6) -> np.ndarray:
    """Smooth LBS weights (V, 16): soft nearest-bone assignment, then diffusion on the mesh graph.

    Each round cone belongs to the joint that moves it (palm slab → wrist, thenar pad → thumb1,
    phalanx → its proximal joint). Weights are non-negative and rows sum to 1.
    """
    V = len(verts)
    owners = [0] + [p.joint for p in prims]
    dist = np.stack([palm_sdf(verts)] + [round_cone_sdf(verts, p) for p in prims], axis=1)
    soft = np.exp(-(dist - dist.min(1, keepdims=True)) / tau)
    W = np.zeros((V, NUM_JOINTS))
    for k, j in enumerate(owners):
        W[:, j] += soft[:, k]
    W /= W.sum(1, keepdims=True)
    edges, deg = vertex_adjacency(faces, V)
    for _ in range(smooth_iters):
        acc = np.zeros_like(W)
        np.add.at(acc, edges[:, 0], W[edges[:, 1]])
        W = 0.5 * W + 0.5 * acc / deg[:, None]
    W[W < 1e-4] = 0.0
    return W / W.sum(1, keepdims=True)


def bone_direction(j: int) -> np.ndarray:
    """Unit direction (3,) of joint j's bone: toward its child (or fingertip); the wrist's points to −x."""
    if j == 0:
        return np.array([-1.0, 0.0, 0.0])
    children = [c for c, p in enumerate(PARENTS) if p == j]
    if children:
        end = MANO_REST_JOINTS[children[0]]
    else:
        finger = next(f for f in FINGERS if j in FINGER_JOINTS[f])
        end = MANO_TIP_POINTS[FINGERS.index(finger)]
    d = end - MANO_REST_JOINTS[j]
    return d / np.linalg.norm(d)


def joint_regressor(verts: np.ndarray, joints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sparse non-negative J_regressor (16, V), rows summing to 1, with ``J_regressor @ verts ≈ joints``.

    Each joint is a convex combination of the skin vertices on a thin slice through it, normal to
    its bone (the ring of skin around the joint), as close to uniform as the constraint allows.
    """
    from scipy.optimize import nnls

    R = np.zeros((NUM_JOINTS, len(verts)))
    for j in range(NUM_JOINTS):
        d = bone_direction(j)
        if j != 0:  # a joint sits between its own bone and its parent's: slice along the mean direction
            d = d + bone_direction(PARENTS[j])
            d /= np.linalg.norm(d)
        rel = verts - joints[j]
        along = rel @ d
        radial = np.linalg.norm(rel - along[:, None] * d, axis=1)
        limit = 0.045 if j == 0 else 0.020
        near = (weights[:, j] + (weights[:, PARENTS[j]] if j else 0)) > 0.05
        cand = np.flatnonzero((np.abs(along) < 0.0035) & (radial < limit) & near)
        A = np.vstack([(verts[cand] - joints[j]).T * 1e3, np.ones(len(cand))]) * 30.0
        b = np.concatenate([np.zeros(3), [30.0]])
        u = np.full(len(cand), 1.0 / len(cand))
        w, _ = nnls(np.vstack([A, np.eye(len(cand))]), np.concatenate([b, u]))
        w /= w.sum()
        R[j, cand] = w
    return R


def tip_vertex_ids(verts: np.ndarray) -> np.ndarray:
    """(5,) vertex nearest to each designed fingertip point, FINGERS order."""
    return np.array([int(np.argmin(np.linalg.norm(verts - t, axis=1))) for t in MANO_TIP_POINTS])


# ---------------------------------------------------------------------------------------------
# Shape space: 10 anthropometric blend shapes
# ---------------------------------------------------------------------------------------------

#: (name, relative change per unit β (one standard deviation)). See OPEN_HAND.md for the sources.
SHAPE_COMPONENTS = (
    ("overall size", 0.060),
    ("palm breadth", 0.040),
    ("finger length (index to pinky)", 0.040),
    ("finger thickness", 0.070),
    ("palm length", 0.040),
    ("thumb length", 0.050),
    ("palm thickness", 0.080),
    ("index vs ring length (2D:4D)", 0.017),
    ("little finger length", 0.050),
    ("thumb and thenar thickness", 0.080),
)


def _chain_children(j: int) -> list[int]:
    return [c for c, p in enumerate(PARENTS) if p == j]


def _segment_param(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    return np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)


def _bone_end(j: int) -> np.ndarray:
    ch = _chain_children(j)
    if ch:
        return MANO_REST_JOINTS[ch[0]]
    finger = next(f for f in FINGERS if j in FINGER_JOINTS[f])
    return MANO_TIP_POINTS[FINGERS.index(finger)]


def _length_field(verts: np.ndarray, weights: np.ndarray, rel: dict[int, float]) -> np.ndarray:
    """Displacement (V, 3) m when finger bone j gets longer by rel[j]·length (joint ids ≥ 1).

    A vertex bound to bone k moves with every lengthened bone above k in full and with k itself
    in proportion to how far along k it lies; blended by the skin weights.
    """
    out = np.zeros_like(verts)
    for k in range(1, NUM_JOINTS):
        if not weights[:, k].any():
            continue
        disp = np.zeros_like(verts)
        a = k
        while a > 0:
            if a in rel:
                a0, a1 = MANO_REST_JOINTS[a], _bone_end(a)
                if a != k:
                    s = np.ones(len(verts))
                elif _chain_children(a):
                    s = _segment_param(verts, a0, a1)
                else:  # a fingertip bone also stretches the skin beyond its end
                    s = np.maximum(((verts - a0) @ (a1 - a0)) / np.sum((a1 - a0) ** 2), 0.0)
                disp += s[:, None] * ((a1 - a0) * rel[a])
            a = PARENTS[a]
        out += weights[:, k:k + 1] * disp
    return out


def _radial_field(verts: np.ndarray, weights: np.ndarray, joints: list[int]) -> np.ndarray:
    """Displacement (V, 3) m per unit relative thickening of the listed bones (away from their axes)."""
    out = np.zeros_like(verts)
    for k in joints:
        a, b = MANO_REST_JOINTS[k], _bone_end(k)
        t = _segment_param(verts, a, b)
        axis_pt = a + t[:, None] * (b - a)
        out += weights[:, k:k + 1] * (verts - axis_pt)
    return out


def shape_directions(verts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The 10 shape blend shapes (V, 3, 10) m per unit β, in SHAPE_COMPONENTS order."""
    V = len(verts)
    S = np.zeros((V, 3, len(SHAPE_COMPONENTS)))
    wrist = MANO_REST_JOINTS[0]
    four = [f for f in FINGERS if f != "thumb"]
    chains = {f: list(FINGER_JOINTS[f]) for f in FINGERS}
    root_of = {j: chains[f][0] for f in FINGERS for j in chains[f]}
    palm_w = weights[:, :1]
    sig = dict(SHAPE_COMPONENTS)
    names = [n for n, _ in SHAPE_COMPONENTS]

    def put(name, field):
        S[:, :, names.index(name)] = field * sig[name]

    put("overall size", verts - wrist)
    # Palm breadth: spread across z about the middle finger's line; chains move with their base joint.
    zc = MANO_REST_JOINTS[4, 2]
    field = np.zeros_like(verts)
    field[:, 2] = palm_w[:, 0] * (verts[:, 2] - zc)
    for j in range(1, NUM_JOINTS):
        field[:, 2] += weights[:, j] * (MANO_REST_JOINTS[root_of[j], 2] - zc)
    put("palm breadth", field)
    put("finger length (index to pinky)", _length_field(verts, weights, {j: 1.0 for f in four for j in chains[f]}))
    put("finger thickness", _radial_field(verts, weights, [j for f in four for j in chains[f]]))
    # Palm length: the palm stretches along its axis (−x) between wrist and knuckles; digits move along.
    x_knuckle = MANO_REST_JOINTS[[1, 4, 7, 10], 0].mean()
    L = wrist[0] - x_knuckle
    field = np.zeros_like(verts)
    s = np.clip((wrist[0] - verts[:, 0]) / L, 0.0, None)
    field[:, 0] = -palm_w[:, 0] * s * L
    for j in range(1, NUM_JOINTS):
        sj = max((wrist[0] - MANO_REST_JOINTS[root_of[j], 0]) / L, 0.0)
        field[:, 0] -= weights[:, j] * sj * L
    put("palm length", field)
    put("thumb length", _length_field(verts, weights, {j: 1.0 for j in chains["thumb"]}))
    field = np.zeros_like(verts)
    field[:, 1] = palm_w[:, 0] * (verts[:, 1] - PALM_Y)
    put("palm thickness", field)
    rel = {j: 1.0 for j in chains["index"]}
    rel.update({j: -1.0 for j in chains["ring"]})
    put("index vs ring length (2D:4D)", _length_field(verts, weights, rel))
    put("little finger length", _length_field(verts, weights, {j: 1.0 for j in chains["pinky"]}))
    put("thumb and thenar thickness", _radial_field(verts, weights, chains["thumb"]))
    return S


# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------

def build_mesh() -> tuple[np.ndarray, np.ndarray]:
    """The rest-pose skin: vertices (V, 3) m and outward-wound triangles (F, 3)."""
    prims = primitives()
    sdf = lambda p: hand_sdf(p, prims)  # noqa: E731
    verts, faces = surface_nets(sdf, GRID_MIN, GRID_MAX, GRID_STEP)
    check_closed_manifold(verts, faces)
    tips = {int(i): t for i, t in zip(tip_vertex_ids(verts), MANO_TIP_POINTS)}  # fingertip vertices sit on the tips
    verts = relax_onto_surface(verts, faces, sdf, pinned=tips)
    return verts, faces


def check_closed_manifold(verts: np.ndarray, faces: np.ndarray) -> None:
    """Raise ValueError unless the mesh is one closed, consistently wound, genus-0 surface."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    euler = len(verts) - len(undirected) + len(faces)
    if (counts != 2).any() or len(np.unique(directed, axis=0)) != len(directed) or euler != 2:
        raise ValueError(f"skin mesh is not a closed genus-0 manifold ({(counts != 2).sum()} bad edges, "
                         f"Euler characteristic {euler}); shift GRID_MIN/GRID_MAX or change GRID_STEP")


def build_right() -> dict[str, np.ndarray]:
    """All arrays of the right open hand model (the 9 MANO arrays + ``tip_vertex_ids``)."""
    prims = primitives()
    verts, faces = build_mesh()
    W = skin_weights(verts, faces, prims)
    Jreg = joint_regressor(verts, MANO_REST_JOINTS, W)
    V = len(verts)
    kintree = np.array([PARENTS, list(range(NUM_JOINTS))], dtype=np.int32)
    return {
        "v_template": verts.astype(np.float32),
        "shapedirs": shape_directions(verts, W).astype(np.float32),
        "posedirs": np.zeros((V, 3, 135), dtype=np.float32),
        "J_regressor": Jreg.astype(np.float32),
        "weights": W.astype(np.float32),
        "kintree_table": kintree,
        "f": faces.astype(np.int32),
        "hands_components": np.eye(45, dtype=np.float32),
        "hands_mean": np.zeros(45, dtype=np.float32),
        "tip_vertex_ids": tip_vertex_ids(verts).astype(np.int32),
    }


def build_left(right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The left model: the mirror image (x → −x) of the right one (``mirror.mirror_model_arrays``)."""
    left = mirror_model_arrays({k: v for k, v in right.items() if k != "tip_vertex_ids"})
    left = {k: np.ascontiguousarray(v).astype(right[k].dtype) for k, v in left.items()}
    left["tip_vertex_ids"] = right["tip_vertex_ids"].copy()
    return left


def write_assets(folder: Path = ASSETS) -> list[Path]:
    """Build both models and write ``open_hand_right.npz`` and ``open_hand_left.npz`` into ``folder``."""
    right = build_right()
    left = build_left(right)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for side, arrays in (("right", right), ("left", left)):
        path = folder / f"open_hand_{side}.npz"
        with atomic_write(path) as fh:
            np.savez_compressed(fh, **arrays)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dahyf.hand.open_hand", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder to write the two .npz files into")
    args = parser.parse_args(argv)
    for path in write_assets(args.out):
        with np.load(path) as z:
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {z['v_template'].shape[0]} vertices, "
                  f"{z['f'].shape[0]} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
