"""Projection confidence of DaHyF (DESIGN.md §3): do the projected 3-D joints agree with the 2-D joints?

``v2d = (J2d · (s_i/s_p) − (s_i/2, s_i/2)) / s_i`` (the 2-D joints, crop-centred, per crop side),
``v2d_proj = (J2d_proj − C) / s_i`` (the projected MANO joints, same frame), and the confidence is
the cosine similarity of the two flattened 42-vectors. Array-API functions (:mod:`dahyf.backend`).
"""
from __future__ import annotations

from ..backend import namespace
from ..constants import CROP_SIZE


def cosine_similarity(a, b, eps: float = 1e-8):
    """Cosine similarity of (B, D) rows → (B,), as ``torch.nn.functional.cosine_similarity``
    (each norm clamped to at least ``eps``)."""
    xp = namespace(a, b)
    na = xp.clip(xp.linalg.vector_norm(a, axis=1), min=eps)
    nb = xp.clip(xp.linalg.vector_norm(b, axis=1), min=eps)
    return xp.sum(a * b, axis=1) / (na * nb)


def projection_confidence(joints2d_crop, joints2d_proj, crop_centre, crop_side, crop_size: int = CROP_SIZE,
                          eps: float = 1e-8):
    """Cosine similarity between the 2-D joints and the projected 3-D joints.

    Parameters
    ----------
    joints2d_crop : (B, 21, 2) px, 2-D joints J2d in the s_p × s_p crop.
    joints2d_proj : (B, 21, 2) px, projected joints J2d_proj in the full image.
    crop_centre : (B, 2) px, crop centre C in the image.
    crop_side : (B,) px, s_i.
    crop_size : s_p, px.

    Returns
    -------
    (B,) in [-1, 1]; 1 when the projection matches the 2-D joints up to a scale about C.
    """
    s_i = crop_side[:, None, None]
    v2d = (joints2d_crop * (s_i / crop_size) - s_i / 2) / s_i
    v2d_proj = (joints2d_proj - crop_centre[:, None, :]) / s_i
    xp = namespace(v2d)
    shape = (v2d.shape[0], v2d.shape[1] * v2d.shape[2])   # explicit: B may be 0
    return cosine_similarity(xp.reshape(v2d, shape), xp.reshape(v2d_proj, shape), eps)


def projection_confidence_image(joints2d, joints2d_proj, crop_centre, crop_side, eps: float = 1e-8):
    """:func:`projection_confidence` with the 2-D joints given in image pixels (same value).

    Parameters
    ----------
    joints2d : (B, 21, 2) px, image; joints2d_proj : (B, 21, 2) px, image;
    crop_centre : (B, 2) px; crop_side : (B,) px.

    Returns
    -------
    (B,).
    """
    s_i = crop_side[:, None, None]
    v2d = (joints2d - crop_centre[:, None, :]) / s_i
    v2d_proj = (joints2d_proj - crop_centre[:, None, :]) / s_i
    xp = namespace(v2d)
    shape = (v2d.shape[0], v2d.shape[1] * v2d.shape[2])   # explicit: B may be 0
    return cosine_similarity(xp.reshape(v2d, shape), xp.reshape(v2d_proj, shape), eps)
