"""Left/right mirroring of MANO poses, points and model arrays (DESIGN.md §2).

The mirror is the reflection x → -x of MANO's canonical frame: it maps the right MANO hand onto
the left one. A rotation R becomes M·R·M with M = diag(-1, 1, 1); on axis-angle vectors that is
negating the y and z components (the HaMeR / WiLoR convention).
"""
from __future__ import annotations

import numpy as np

_POSE_SIGN = (1.0, -1.0, -1.0)
_POINT_SIGN = (-1.0, 1.0, 1.0)


def mirror_pose(pose):
    """Mirror axis-angle rotations between right and left hands.

    Parameters
    ----------
    pose : (..., 3) rad, numpy array or torch tensor (e.g. (B, 16, 3) MANO pose).

    Returns
    -------
    Same type and shape; y and z components negated.
    """
    return pose * _sign_like(pose, _POSE_SIGN)


def mirror_points(points):
    """Mirror 3-D points (vertices, joints, translations) between right and left hands.

    Parameters
    ----------
    points : (..., 3) m, numpy array or torch tensor.

    Returns
    -------
    Same type and shape; x negated.
    """
    return points * _sign_like(points, _POINT_SIGN)


def mirror_image_points(points_2d, image_width: float):
    """Mirror 2-D image points for a horizontally flipped image.

    Parameters
    ----------
    points_2d : (..., 2) px.
    image_width : px.

    Returns
    -------
    (..., 2) px, ``x' = W - x``.
    """
    out = points_2d * 1.0
    out[..., 0] = image_width - points_2d[..., 0]
    return out


def mirror_faces(faces: np.ndarray) -> np.ndarray:
    """Reverse triangle winding so normals of a mirrored mesh still point outward. (F, 3) → (F, 3)."""
    return np.ascontiguousarray(faces[:, ::-1])


def mirror_model_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build the other side's MANO-format arrays from one side's (the 9 keys of DESIGN.md §2).

    Vertices, shape and pose-corrective directions are reflected in x; the pose-corrective
    feature ``R - I`` of a mirrored pose is ``M (R - I) M``, so posedirs are re-indexed with that sign.
    """
    sign = np.array(_POINT_SIGN)
    out = dict(arrays)
    out["v_template"] = arrays["v_template"] * sign
    out["shapedirs"] = arrays["shapedirs"] * sign[None, :, None]
    # posedirs (V, 3, 135): feature index = 9*j + 3*r + c of (R - I)[r, c]; M X M flips entries with r xor c == x.
    m = np.array([-1.0, 1.0, 1.0])
    feat_sign = np.tile((m[:, None] * m[None, :]).reshape(-1), 15)
    out["posedirs"] = arrays["posedirs"] * sign[None, :, None] * feat_sign[None, None, :]
    out["f"] = mirror_faces(arrays["f"])
    comp_sign = np.tile(np.array(_POSE_SIGN), 15)
    out["hands_components"] = arrays["hands_components"] * comp_sign[None, :]
    out["hands_mean"] = arrays["hands_mean"] * comp_sign
    return out


def _sign_like(x, sign):
    if isinstance(x, np.ndarray):
        return np.asarray(sign, dtype=x.dtype)
    import torch

    return torch.tensor(sign, dtype=x.dtype, device=x.device)
