"""The DaHyF regressor: an MLP from the joint encoding to θ (6-D rotations), β and a weak camera.

6-D rotation representation after Zhou et al., "On the Continuity of Rotation Representations in
Neural Networks" (CVPR 2019): the first two columns of the rotation matrix, re-orthonormalised by
Gram-Schmidt.

The forward (:func:`regressor_forward`) is one array-API function of the weights (a mapping named as
the ``nn.Module``'s state dict): numpy weights at capture time, the module's parameters in training
(``dahyf.net.modules.Regressor``).
"""
from __future__ import annotations

import math

from ..backend import namespace
from ..constants import MEAN_WEAK_SCALE
from ..hand.tables import NUM_JOINTS

#: LayerNorm ε (torch's default, which the trained weights assume).
LAYER_NORM_EPS = 1e-5
#: The weak scale's exponent is clamped to at most log(this) (s ≤ 1000 × MEAN_WEAK_SCALE).
MAX_WEAK_SCALE_FACTOR = 1e3


def _normalize(v, eps: float = 1e-12):
    xp = namespace(v)
    return v / xp.clip(xp.linalg.vector_norm(v, axis=-1, keepdims=True), min=eps)


def rot6d_to_matrix(x):
    """6-D rotation representation to rotation matrices.

    Parameters
    ----------
    x : (..., 6), the two first columns (a1, a2) of the matrix, unnormalised.

    Returns
    -------
    (..., 3, 3), columns b1 = a1/|a1|, b2 = a2 − (b1·a2) b1 normalised, b3 = b1 × b2.
    """
    xp = namespace(x)
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = _normalize(a1)
    b2 = _normalize(a2 - xp.sum(b1 * a2, axis=-1, keepdims=True) * b1)
    b3 = xp.linalg.cross(b1, b2, axis=-1)
    return xp.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(R):
    """Rotation matrices (..., 3, 3) to the 6-D representation (..., 6) (first two columns)."""
    return namespace(R).concat([R[..., :, 0], R[..., :, 1]], axis=-1)


def rotation_distance(R1, R2):
    """Geodesic angle between rotations, (..., 3, 3) × (..., 3, 3) → (...,) rad."""
    xp = namespace(R1, R2)
    tr = xp.linalg.trace(xp.matrix_transpose(R1) @ R2)
    return xp.acos(xp.clip((tr - 1) / 2, min=-1 + 1e-7, max=1 - 1e-7))


def linear(x, weight, bias):
    """``x Wᵀ + b``: (B, i) → (B, o) with weight (o, i), bias (o,)."""
    return x @ namespace(x).matrix_transpose(weight) + bias


def layer_norm(x, weight, bias, eps: float = LAYER_NORM_EPS):
    """Layer normalisation over the last axis (biased variance, as ``torch.nn.LayerNorm``)."""
    xp = namespace(x)
    mean = xp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = xp.mean(centred * centred, axis=-1, keepdims=True)
    return centred / xp.sqrt(var + eps) * weight + bias


def regressor_forward(weights, x, depth: int):
    """The regressor MLP: ``x → Linear → ReLU → depth × [x + Linear(ReLU(Linear(LayerNorm(x))))] →
    LayerNorm`` → heads.

    Parameters
    ----------
    weights : mapping name → array, named as :class:`dahyf.net.modules.Regressor`'s state dict
        (``inp.weight``, ``blocks.{i}.norm.weight``, ``blocks.{i}.fc1.weight``, …, ``head_cam.bias``).
    x : (B, in_dim) features.
    depth : number of residual blocks.

    Returns
    -------
    rotmats (B, 16, 3, 3), betas (B, 10), weak_cam (B, 3) = (s, t_x, t_y) with s > 0.
    """
    xp = namespace(x)
    w = weights

    def lin(name, h):
        return linear(h, w[f"{name}.weight"], w[f"{name}.bias"])

    h = xp.maximum(lin("inp", x), 0)
    for i in range(depth):
        b = f"blocks.{i}"
        n = layer_norm(h, w[f"{b}.norm.weight"], w[f"{b}.norm.bias"])
        h = h + lin(f"{b}.fc2", xp.maximum(lin(f"{b}.fc1", n), 0))
    h = layer_norm(h, w["norm.weight"], w["norm.bias"])
    rot = rot6d_to_matrix(xp.reshape(lin("head_rot", h), (x.shape[0], NUM_JOINTS, 6)))
    betas = lin("head_betas", h)
    cam = lin("head_cam", h)
    s = MEAN_WEAK_SCALE * xp.exp(xp.clip(cam[:, :1], max=math.log(MAX_WEAK_SCALE_FACTOR)))
    return rot, betas, xp.concat([s, cam[:, 1:]], axis=-1)
