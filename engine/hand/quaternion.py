"""Unit quaternions (w, x, y, z) and axis-angle vectors, for numpy arrays and torch tensors alike.

One implementation (array API, :mod:`dahyf.backend`) serves the capture filters (smoothing on
SO(3)), the Blender add-on's keying and the batched network code. numpy input (or a sequence) is
computed in float64, as the filters need; tensors keep their dtype and device. Any leading shape.
"""
from __future__ import annotations

import numpy as np

from ..backend import is_torch_array, namespace


def _float(x):
    """Tensors as they are; anything else as a float64 numpy array."""
    return x if is_torch_array(x) else np.asarray(x, dtype=np.float64)


def from_axis_angle(aa):
    """(..., 3) rad axis-angle → (..., 4) unit quaternions (w, x, y, z)."""
    aa = _float(aa)
    xp = namespace(aa)
    angle = xp.linalg.vector_norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    small = angle < 1e-6
    # sin(angle/2)/angle, with its Taylor series near 0
    k = xp.where(small, 0.5 - angle**2 / 48.0, xp.sin(half) / xp.where(small, xp.ones_like(angle), angle))
    return xp.concat([xp.cos(half), aa * k], axis=-1)


def to_axis_angle(q):
    """(..., 4) unit quaternions (w, x, y, z) → (..., 3) rad axis-angle, angle in [0, π]."""
    q = _float(q)
    xp = namespace(q)
    q = xp.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = xp.linalg.vector_norm(v, axis=-1, keepdims=True)
    angle = 2.0 * xp.atan2(s, q[..., :1])
    # angle / sin(angle/2), with the small-angle limit 2 / w.
    k = xp.where(s > 1e-9, angle / xp.clip(s, min=1e-12), 2.0 / xp.clip(q[..., :1], min=1e-12))
    return v * k


def from_matrix(R):
    """(..., 3, 3) rotation matrices → (..., 4) unit quaternions (w, x, y, z) with w ≥ 0.

    Of the four algebraically equal candidates, the best conditioned one (largest diagonal term) is used.
    """
    R = _float(R)
    xp = namespace(R)
    m = R
    t = xp.stack([
        1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2],
        1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
        1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
        1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2],
    ], axis=-1)
    cands = [
        xp.stack([t[..., 0], m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], axis=-1),
        xp.stack([m[..., 2, 1] - m[..., 1, 2], t[..., 1], m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], axis=-1),
        xp.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], t[..., 2], m[..., 2, 1] + m[..., 1, 2]], axis=-1),
        xp.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], t[..., 3]], axis=-1),
    ]
    best = xp.argmax(t, axis=-1)[..., None]
    q = cands[3]
    for i in (2, 1, 0):
        q = xp.where(best == i, cands[i], q)
    q = q / xp.linalg.vector_norm(q, axis=-1, keepdims=True)
    return xp.where(q[..., :1] < 0, -q, q)


def multiply(a, b):
    """Hamilton product a ⊗ b of (..., 4) quaternions (w, x, y, z), broadcasting."""
    a, b = _float(a), _float(b)
    xp = namespace(a, b)
    aw, ax, ay, az = (a[..., i] for i in range(4))
    bw, bx, by, bz = (b[..., i] for i in range(4))
    return xp.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def conjugate(q):
    """(..., 4) → (..., 4): the inverse of a unit quaternion."""
    q = _float(q)
    return namespace(q).concat([q[..., :1], -q[..., 1:]], axis=-1)


def rotate(q, v):
    """Rotate (..., 3) vectors by (..., 4) unit quaternions."""
    q, v = _float(q), _float(v)
    xp = namespace(q, v)
    vq = xp.concat([xp.zeros_like(v[..., :1]), v], axis=-1)
    return multiply(multiply(q, vq), conjugate(q))[..., 1:]
