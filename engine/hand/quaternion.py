"""Unit-quaternion maths in numpy (w, x, y, z), for code that works outside torch.

Used by the capture filters (smoothing on SO(3)) and by the Blender add-on's keying; the torch
versions for batched network code are in :mod:`dahyf.hand.kinematics`. Any leading shape.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def from_axis_angle(aa: np.ndarray) -> np.ndarray:
    """(..., 3) rad axis-angle → (..., 4) unit quaternions (w, x, y, z), float64."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    small = angle < 1e-6
    # sin(angle/2)/angle, with its Taylor series near 0
    k = np.where(small, 0.5 - angle**2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([np.cos(half), aa * k], axis=-1)


def to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) → (..., 3) rad axis-angle, angle in [0, π]."""
    q = np.asarray(q, dtype=np.float64)
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    k = np.where(s > 1e-9, angle / np.maximum(s, _EPS), 2.0 / np.maximum(q[..., :1], _EPS))
    return v * k


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b of (..., 4) quaternions (w, x, y, z), broadcasting."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def conjugate(q: np.ndarray) -> np.ndarray:
    """(..., 4) → (..., 4): the inverse of a unit quaternion."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors by (..., 4) unit quaternions."""
    vq = np.concatenate([np.zeros(v.shape[:-1] + (1,)), v], axis=-1)
    return multiply(multiply(q, vq), conjugate(q))[..., 1:]
