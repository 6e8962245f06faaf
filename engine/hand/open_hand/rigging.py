"""The open hand model's skin weights, joint regressor, fingertip vertices and anthropometric shape space."""
from __future__ import annotations

import numpy as np

from ..tables import FINGER_JOINTS, FINGERS, NUM_JOINTS, PARENTS
from .skeleton import MANO_REST_JOINTS, MANO_TIP_POINTS, PALM_Y, Primitive
from .surface import palm_sdf, round_cone_sdf

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
